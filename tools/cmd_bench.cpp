// whittle bench: time a model on random inputs, or on inputs read from files with --input
// (latency percentiles, throughput, memory, optionally time per op type and per node). The
// --json schema is docs/bench-schema.md.
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <cstdlib>
#include <thread>

#include "commands.h"
#include "whittle/common/text.h"
#include "whittle/data/dataset.h"
#include "whittle/eval/latency.h"
#include "whittle/onnx_io/onnx_io.h"
#include "whittle/runtime/session.h"

namespace whittle::tools {
namespace {

struct BenchOptions {
  std::string model;
  int threads = 0;  // 0: all hardware threads
  std::string device = "cpu";
  int64_t batch = 1;
  bool batchGiven = false;
  int iterations = 50;
  int warmup = 5;
  bool json = false;
  bool profile = false;
  bool profileAllNodes = false;  // --profile-nodes: every node in the JSON profile, in graph order
  uint64_t seed = 0;
  /// --input values: NAME=FILE, or FILE for a model with one input.
  std::vector<std::string> inputFiles;
  /// --dim values: NAME=VALUE, the size of a symbolic input dim of that name for random inputs.
  std::vector<std::string> dims;
};

/// --dim NAME=VALUE pairs, checked against the symbolic dims the model's inputs name.
Expected<std::map<std::string, int64_t>> parseDimValues(const std::vector<std::string>& specs,
                                                        const std::vector<data::InputSpec>& inputs) {
  std::set<std::string> named;
  for (const auto& in : inputs) {
    if (!in.dims) continue;
    for (const ir::Dim& d : *in.dims) {
      if (!d.isKnown() && !d.param.empty()) named.insert(d.param);
    }
  }
  std::map<std::string, int64_t> values;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    const std::string name = eq == std::string::npos ? "" : spec.substr(0, eq);
    int64_t value = 0;
    const std::string text = eq == std::string::npos ? "" : spec.substr(eq + 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (name.empty() || text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 1) {
      return invalidInput("--dim '" + spec + "': expected NAME=VALUE with a positive integer VALUE");
    }
    if (!named.count(name)) {
      std::string known;
      for (const std::string& n : named) known += (known.empty() ? "" : ", ") + n;
      return invalidInput("--dim '" + spec + "': no input of the model has a symbolic dim named '" + name + "'" +
                          (known.empty() ? " (it has none)" : " (it has: " + known + ")"));
    }
    values[name] = value;
  }
  return values;
}

// A random tensor: floats uniform in [-1, 1), uint8 in [0, 255], int8 in [-128, 127], other
// integers in [0, 10), bools 0/1.
Expected<ir::Tensor> randomTensor(const std::string& name, ir::DataType dtype, std::vector<int64_t> dims,
                                  std::mt19937_64& rng) {
  ir::Tensor t(dtype, std::move(dims));
  int64_t n = t.numel();
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  auto ints = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  switch (dtype) {
    case ir::DataType::kFloat: for (int64_t i = 0; i < n; ++i) t.mutableData<float>()[i] = real(rng); break;
    case ir::DataType::kDouble: for (int64_t i = 0; i < n; ++i) t.mutableData<double>()[i] = real(rng); break;
    case ir::DataType::kFloat16: for (int64_t i = 0; i < n; ++i) t.mutableData<uint16_t>()[i] = ir::floatToHalf(real(rng)); break;
    case ir::DataType::kBFloat16: for (int64_t i = 0; i < n; ++i) t.mutableData<uint16_t>()[i] = ir::floatToBfloat16(real(rng)); break;
    case ir::DataType::kUint8: for (int64_t i = 0; i < n; ++i) t.mutableData<uint8_t>()[i] = static_cast<uint8_t>(ints(0, 255)); break;
    case ir::DataType::kInt8: for (int64_t i = 0; i < n; ++i) t.mutableData<int8_t>()[i] = static_cast<int8_t>(ints(-128, 127)); break;
    case ir::DataType::kBool: for (int64_t i = 0; i < n; ++i) t.mutableData<bool>()[i] = ints(0, 1) != 0; break;
    case ir::DataType::kInt16: for (int64_t i = 0; i < n; ++i) t.mutableData<int16_t>()[i] = static_cast<int16_t>(ints(0, 9)); break;
    case ir::DataType::kInt32: for (int64_t i = 0; i < n; ++i) t.mutableData<int32_t>()[i] = static_cast<int32_t>(ints(0, 9)); break;
    case ir::DataType::kInt64: for (int64_t i = 0; i < n; ++i) t.mutableData<int64_t>()[i] = ints(0, 9); break;
    case ir::DataType::kUint16: for (int64_t i = 0; i < n; ++i) t.mutableData<uint16_t>()[i] = static_cast<uint16_t>(ints(0, 9)); break;
    case ir::DataType::kUint32: for (int64_t i = 0; i < n; ++i) t.mutableData<uint32_t>()[i] = static_cast<uint32_t>(ints(0, 9)); break;
    case ir::DataType::kUint64: for (int64_t i = 0; i < n; ++i) t.mutableData<uint64_t>()[i] = static_cast<uint64_t>(ints(0, 9)); break;
    default:
      return unimplemented("input '" + name + "': cannot make random " + std::string(ir::dataTypeName(dtype)) +
                           " inputs for bench");
  }
  return t;
}

// The tensors given with --input, by model input name, with the file each came from (the
// rules of `whittle run`: collectFeeds); their first dim is the batch, the other dims and the
// element type must match the model input.
Status readInputFiles(const std::vector<std::string>& args, const std::vector<data::InputSpec>& inputs,
                      std::map<std::string, std::pair<ir::Tensor, std::string>>& given) {
  for (const std::string& arg : args) WH_RETURN_IF_ERROR(collectFeeds(arg, inputs, given));
  for (const data::InputSpec& in : inputs) {
    auto it = given.find(in.name);
    if (it != given.end()) WH_RETURN_IF_ERROR(checkFeed(in, it->second.first, it->second.second));
  }
  return Status::ok();
}

struct OpTypeTime {
  std::string opType;
  int64_t nodes = 0;
  int64_t oneThreadNodes = 0;  ///< nodes the runtime ran on one thread of several (too small to split)
  double msPerRun = 0;
  double cpuMsPerRun = 0;       ///< the process's CPU time while they ran, every thread
  double switchesPerRun = 0;    ///< the process's context switches while they ran
};

/// The peak resident set of this process image, in bytes: VmHWM from /proc/self/status.
/// (getrusage's ru_maxrss survives exec, so it reports the launching program's peak when
/// that was larger.) Falls back to ru_maxrss where /proc is not there.
int64_t processPeakRssBytes() {
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    }
    std::fclose(f);
    if (kib >= 0) return static_cast<int64_t>(kib) * 1024;
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
}

Status benchCommand(const BenchOptions& opts) {
  applySpinCount(opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency()));
  auto loaded = onnx_io::load(opts.model);
  if (!loaded.isOk()) return loaded.status();
  ir::Model& model = *loaded;
  std::vector<data::InputSpec> inputs = data::inputSpecs(*model.graph);
  std::vector<std::string> notes;
  std::map<std::string, std::pair<ir::Tensor, std::string>> given;
  WH_RETURN_IF_ERROR(readInputFiles(opts.inputFiles, inputs, given));

  // Inputs from files as they are (their first dim is the batch); random inputs for the rest:
  // a symbolic first dim is the batch (the first file's, else --batch); other symbolic dims
  // take their --dim value, else 1.
  WH_ASSIGN_OR_RETURN(auto dimValues, parseDimValues(opts.dims, inputs));
  std::string defaultedDims;  // "W of 'x'" for each symbolic dim set to 1 by default
  std::mt19937_64 rng(opts.seed);
  std::vector<runtime::NamedTensor> feeds;
  std::vector<std::string> sources;  // per feed: the file, or "random"
  int64_t samples = 0;
  int64_t randomBatch = opts.batch;
  for (const auto& in : inputs) {
    auto it = given.find(in.name);
    if (it == given.end() || it->second.first.rank() == 0) continue;  // a scalar has no batch
    randomBatch = it->second.first.dims()[0];
    if (opts.batchGiven && randomBatch != opts.batch) {
      notes.push_back("input '" + in.name + "' comes from " + it->second.second + " with a batch of " +
                      std::to_string(randomBatch) + "; --batch " + std::to_string(opts.batch) + " does not apply");
    }
    break;
  }
  for (const auto& in : inputs) {
    if (auto it = given.find(in.name); it != given.end()) {
      if (samples == 0 && it->second.first.rank() > 0) samples = it->second.first.dims()[0];
      feeds.emplace_back(in.name, std::move(it->second.first));
      sources.push_back(it->second.second);
      continue;
    }
    if (!in.dims) return invalidInput("input '" + in.name + "' has no shape in the model; bench cannot make inputs for it");
    if (in.dtype == ir::DataType::kUndefined) return invalidInput("input '" + in.name + "' has no element type in the model");
    std::vector<int64_t> dims;
    for (size_t i = 0; i < in.dims->size(); ++i) {
      const ir::Dim& d = (*in.dims)[i];
      if (d.isKnown()) {
        dims.push_back(d.value);
        if (i == 0 && opts.batchGiven && d.value != opts.batch) {
          notes.push_back("input '" + in.name + "' has a fixed batch of " + std::to_string(d.value) + "; --batch " +
                          std::to_string(opts.batch) + " does not apply to it");
        }
      } else if (auto named = dimValues.find(d.param); !d.param.empty() && named != dimValues.end()) {
        dims.push_back(named->second);
      } else if (i == 0) {
        dims.push_back(randomBatch);
      } else {
        dims.push_back(1);
        notes.push_back("input '" + in.name + "' dim " + std::to_string(i) + " ('" + (d.param.empty() ? "?" : d.param) +
                        "') is symbolic; using 1" + (d.param.empty() ? "" : " (--dim " + d.param + "=N sets it)"));
        defaultedDims += (defaultedDims.empty() ? "" : ", ") + (d.param.empty() ? "dim " + std::to_string(i) : d.param) +
                         " of '" + in.name + "'";
      }
    }
    if (samples == 0) samples = dims.empty() ? 1 : dims[0];
    auto tensor = randomTensor(in.name, in.dtype, dims, rng);
    if (!tensor.isOk()) return tensor.status();
    feeds.emplace_back(in.name, std::move(tensor).value());
    sources.push_back("random");
  }
  if (samples == 0) samples = 1;

  runtime::SessionOptions sessionOptions;
  sessionOptions.threads = opts.threads > 0 ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  sessionOptions.profile = opts.profile;
  WH_ASSIGN_OR_RETURN(sessionOptions.device, deviceOption(opts.device, "--device"));
  auto session = runtime::Session::create(model, sessionOptions);
  if (!session.isOk()) return session.status();
  runtime::Session& s = **session;

  // Warm-up first, on its own, so that the profile snapshot taken after it leaves the node
  // times of the timed runs alone.
  runtime::Session* sessions[] = {&s};
  // A model that cannot run on a symbolic dim set to 1 (a pooling window wider than the input)
  // fails with the kernel's message; say which dims were guessed and how to set them.
  auto explainDefaults = [&](const Status& st) {
    if (st.isOk() || defaultedDims.empty()) return st;
    return Status(st.code(), st.message() + " (the random inputs set symbolic dims to 1: " + defaultedDims +
                                 "; give their sizes with --dim NAME=N, or inputs with --input)");
  };
  WH_RETURN_IF_ERROR(explainDefaults(eval::warmUp(sessions, feeds, opts.warmup)));
  std::vector<runtime::NodeProfile> before = s.profile();
  eval::LatencyOptions timing;
  timing.warmupRuns = 0;
  timing.runs = opts.iterations;
  timing.batch = samples;
  auto measured = eval::measureLatency(sessions, feeds, timing);
  if (!measured.isOk()) return explainDefaults(measured.status());
  std::vector<eval::LatencyStats> stats = std::move(measured).value();
  const eval::LatencyStats& lat = stats.front();
  int64_t peakRss = processPeakRssBytes();

  // Per-node time of the timed runs only: the difference from the snapshot after warm-up.
  std::vector<runtime::NodeProfile> nodes;
  std::vector<OpTypeTime> opTypes;
  double nodeTotal = 0, nodeCpuTotal = 0, switchesTotal = 0;
  std::vector<runtime::NodeProfile> graphOrder;
  if (opts.profile) {
    std::vector<runtime::NodeProfile> after = s.profile();
    for (size_t i = 0; i < after.size(); ++i) {
      // Nodes inside subgraphs count with their own time, control-flow nodes with the time
      // they spent outside their subgraphs' nodes, so that an If shows what its branch did.
      runtime::NodeProfile p = after[i];
      double prior = i < before.size() ? before[i].selfMs : 0;
      p.totalMs = (p.selfMs - prior) / opts.iterations;
      p.selfCpuMs = (p.selfCpuMs - (i < before.size() ? before[i].selfCpuMs : 0)) / opts.iterations;
      p.selfSwitches -= i < before.size() ? before[i].selfSwitches : 0;  // over all timed runs
      p.runs = opts.iterations;
      if (!p.scope.empty()) p.node = p.scope + "/" + p.node;
      nodeTotal += p.totalMs;
      nodeCpuTotal += p.selfCpuMs;
      switchesTotal += static_cast<double>(p.selfSwitches) / opts.iterations;
      nodes.push_back(p);
    }
    std::map<std::string, OpTypeTime> byType;
    for (const auto& p : nodes) {
      auto& t = byType[p.opType];
      t.opType = p.opType;
      t.nodes += 1;
      t.oneThreadNodes += p.threads == 1 && sessionOptions.threads > 1;
      t.msPerRun += p.totalMs;
      t.cpuMsPerRun += p.selfCpuMs;
      t.switchesPerRun += static_cast<double>(p.selfSwitches) / opts.iterations;
    }
    for (auto& [_, t] : byType) opTypes.push_back(t);
    std::sort(opTypes.begin(), opTypes.end(), [](const OpTypeTime& a, const OpTypeTime& b) { return a.msPerRun > b.msPerRun; });
    graphOrder = nodes;
    std::stable_sort(nodes.begin(), nodes.end(),
                     [](const runtime::NodeProfile& a, const runtime::NodeProfile& b) { return a.totalMs > b.totalMs; });
    notes.push_back("--profile times each node, which adds overhead to the latency figures");
  }
  auto fractionOf = [&](double v) { return nodeTotal > 0 ? v / nodeTotal : 0.0; };
  auto percentOf = [&](double v) { return 100.0 * fractionOf(v); };
  constexpr size_t kTopNodes = 20;

  if (opts.json) {
    nlohmann::json j;
    j["schema"] = "whittle.bench/1";
    j["model"] = opts.model;
    j["nodes"] = model.graph->numNodes();
    j["threads"] = sessionOptions.threads;
    // How idle OpenMP threads waited (--spin-count: tools/spin_wait.cpp); null where not set.
    auto envOrNull = [](const char* name) -> nlohmann::json {
      const char* v = std::getenv(name);
      return v != nullptr ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    j["wait"] = {{"GOMP_SPINCOUNT", envOrNull("GOMP_SPINCOUNT")}, {"OMP_WAIT_POLICY", envOrNull("OMP_WAIT_POLICY")}};
    j["device"] = std::string(runtime::deviceName(sessionOptions.device));
    j["batch"] = samples;
    j["warmup"] = opts.warmup;
    j["iterations"] = opts.iterations;
    j["seed"] = opts.seed;
    j["inputs"] = nlohmann::json::array();
    for (size_t i = 0; i < feeds.size(); ++i) {
      const auto& [name, t] = feeds[i];
      j["inputs"].push_back({{"name", name},
                             {"dtype", std::string(ir::dataTypeName(t.dtype()))},
                             {"shape", t.dims()},
                             {"source", sources[i]}});
    }
    j["latencyMs"] = {{"mean", lat.meanMs}, {"p50", lat.p50Ms}, {"p90", lat.p90Ms}, {"p99", lat.p99Ms},
                      {"min", lat.minMs},   {"max", lat.maxMs}, {"stddev", lat.stddevMs}};
    j["cpuMs"] = {{"mean", lat.cpuMeanMs}, {"p50", lat.cpuP50Ms}};
    j["throughputSamplesPerSecond"] = lat.throughput;
    j["memory"] = {{"activationPeakBytes", s.peakActivationBytes()}, {"processPeakRssBytes", peakRss}};
    if (opts.profile) {
      nlohmann::json types = nlohmann::json::array(), top = nlohmann::json::array();
      for (const auto& t : opTypes) {
        types.push_back({{"op", t.opType}, {"nodes", t.nodes}, {"oneThreadNodes", t.oneThreadNodes},
                         {"msPerRun", t.msPerRun}, {"cpuMsPerRun", t.cpuMsPerRun},
                         {"switchesPerRun", t.switchesPerRun}, {"fraction", fractionOf(t.msPerRun)}});
      }
      for (size_t i = 0; i < nodes.size() && i < kTopNodes; ++i) {
        top.push_back({{"node", nodes[i].node}, {"op", nodes[i].opType}, {"msPerRun", nodes[i].totalMs},
                       {"cpuMsPerRun", nodes[i].selfCpuMs},
                       {"switchesPerRun", static_cast<double>(nodes[i].selfSwitches) / opts.iterations},
                       {"threads", nodes[i].threads}, {"fraction", fractionOf(nodes[i].totalMs)}});
      }
      // Every node, in graph order, when asked (--profile-nodes): to compare runs node by node.
      nlohmann::json all = nlohmann::json::array();
      if (opts.profileAllNodes) {
        for (const auto& p : graphOrder) {
          all.push_back({{"node", p.node}, {"op", p.opType}, {"msPerRun", p.totalMs}, {"cpuMsPerRun", p.selfCpuMs},
                         {"switchesPerRun", static_cast<double>(p.selfSwitches) / opts.iterations},
                         {"threads", p.threads}});
        }
      }
      j["profile"] = {{"nodeMsPerRun", nodeTotal}, {"nodeCpuMsPerRun", nodeCpuTotal},
                      {"switchesPerRun", switchesTotal}, {"opTypes", types}, {"topNodes", top}};
      if (opts.profileAllNodes) j["profile"]["nodes"] = all;
    } else {
      j["profile"] = nullptr;
    }
    j["notes"] = notes;
    std::printf("%s\n", j.dump(2).c_str());
    return Status::ok();
  }

  for (const auto& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  std::printf("model       %s (%zu nodes)\n", opts.model.c_str(), model.graph->numNodes());
  for (size_t i = 0; i < feeds.size(); ++i) {
    const auto& [name, t] = feeds[i];
    std::printf("input       %s %s %s (%s)\n", name.c_str(), std::string(ir::dataTypeName(t.dtype())).c_str(),
                data::dimsText(t.dims()).c_str(), sources[i] == "random" ? "random" : ("from " + sources[i]).c_str());
  }
  std::printf("runs        %s, %d threads, batch %lld, %d warm-up, %d timed\n",
              std::string(runtime::deviceName(sessionOptions.device)).c_str(), sessionOptions.threads,
              static_cast<long long>(samples), opts.warmup, opts.iterations);
  std::printf("latency ms  mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  min %.3f  max %.3f  (stddev %.3f)\n",
              lat.meanMs, lat.p50Ms, lat.p90Ms, lat.p99Ms, lat.minMs, lat.maxMs, lat.stddevMs);
  std::printf("cpu ms      mean %.3f  p50 %.3f  (process CPU time per run, all threads)\n", lat.cpuMeanMs, lat.cpuP50Ms);
  std::printf("throughput  %.1f samples/s\n", lat.throughput);
  std::printf("memory      %sactivations peak %s, process peak RSS %s\n",
              sessionOptions.device == runtime::DeviceKind::kCuda ? "device " : "", bytesText(static_cast<int64_t>(s.peakActivationBytes())).c_str(), bytesText(peakRss).c_str());
  if (opts.profile) {
    // cpu ms: the process's CPU time while the nodes ran (every thread: above ms x threads where
    // idle threads spin, near ms where they sleep); switches: its context switches (wake-ups).
    const double runs = opts.iterations;
    std::printf("\n%-24s %6s %8s %12s %12s %9s %7s\n", "op type", "nodes", "1-thread", "ms/run", "cpu ms/run",
                "switches", "%");
    for (const auto& t : opTypes) {
      std::printf("%-24s %6lld %8lld %12.4f %12.4f %9.1f %6.1f%%\n", t.opType.c_str(), static_cast<long long>(t.nodes),
                  static_cast<long long>(t.oneThreadNodes), t.msPerRun, t.cpuMsPerRun, t.switchesPerRun,
                  percentOf(t.msPerRun));
    }
    std::printf("%-24s %6zu %8s %12.4f %12.4f %9.1f %6.1f%%\n", "total", nodes.size(), "", nodeTotal, nodeCpuTotal,
                switchesTotal, nodeTotal > 0 ? 100.0 : 0.0);
    std::printf("\ntop %zu nodes\n%-4s %-40s %-20s %7s %12s %12s %9s %7s\n", std::min(kTopNodes, nodes.size()), "#",
                "node", "op type", "threads", "ms/run", "cpu ms/run", "switches", "%");
    for (size_t i = 0; i < nodes.size() && i < kTopNodes; ++i) {
      // The end of a long name: a subgraph node's own name comes after its scope.
      std::string name = nodes[i].node.size() > 40 ? "..." + nodes[i].node.substr(nodes[i].node.size() - 37) : nodes[i].node;
      std::printf("%-4zu %-40s %-20s %7d %12.4f %12.4f %9.1f %6.1f%%\n", i + 1, name.c_str(), nodes[i].opType.c_str(),
                  nodes[i].threads, nodes[i].totalMs, nodes[i].selfCpuMs,
                  static_cast<double>(nodes[i].selfSwitches) / runs, percentOf(nodes[i].totalMs));
    }
  }
  return Status::ok();
}

}  // namespace

void registerBench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Time a model on random or given inputs: latency, throughput, memory, profile");
  auto opts = std::make_shared<BenchOptions>();
  cmd->add_option("model", opts->model, "The .onnx file")->required();
  cmd->add_option("--threads", opts->threads, "Threads for the kernels (default: all hardware threads)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", opts->device,
                  "cpu (default) or cuda; on cuda the times include the copies of inputs and outputs "
                  "(the GPU path is unverified in this build)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  auto* batch = cmd->add_option("--batch", opts->batch, "Batch size for a symbolic first input dim (default 1)")
                    ->check(CLI::PositiveNumber);
  cmd->add_option("--iterations", opts->iterations, "Timed runs (default 50)")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", opts->warmup, "Untimed runs first (default 5)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", opts->seed, "Seed of the random inputs (default 0)");
  cmd->add_option("--input,-i", opts->inputFiles,
                  "NAME=FILE (or FILE for a one-input model, or an .npz whose arrays are named after the inputs, or a "
                  "test_data_set folder): bench on these tensors (.npy, .npz, .pb TensorProto) instead of random data; "
                  "their first dim is the batch. Repeat for several inputs; inputs not given get random data");
  cmd->add_option("--dim", opts->dims,
                  "NAME=N: the size of the symbolic input dim NAME (as `whittle inspect` lists the inputs) in the "
                  "random inputs, e.g. --dim width=320 for an OCR model's [1,3,48,width]; other symbolic dims "
                  "are 1, the first is the batch. Repeat for several");
  cmd->add_flag("--json", opts->json, "Print JSON (schema: docs/bench-schema.md)");
  cmd->add_flag("--profile", opts->profile, "Time every node, inside If/Loop/Scan bodies too (a control-flow node counts the time outside its bodies' nodes): per op type and the top 20 nodes, each with the process's CPU time (all threads) and context switches while it ran, and the threads it ran on");
  cmd->add_flag("--profile-nodes", opts->profileAllNodes, "With --profile --json: every node's figures, in graph order (\"profile\".\"nodes\")");
  cmd->callback([opts, batch] {
    opts->batchGiven = batch->count() > 0;
    Status status = benchCommand(*opts);
    setExitCode(status.isOk() ? 0 : reportError(status));
  });
}

}  // namespace whittle::tools
