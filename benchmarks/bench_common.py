"""What the benchmark scripts share: benchmarks/RESULTS.md is made of sections, each owned by
one script and delimited by `<!-- BEGIN name -->` / `<!-- END name -->`; a script replaces only
its own section (appending it when missing) and never touches the others."""
import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def update_results(section, text, path=RESULTS):
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    content = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in content and end in content:
        start, stop = content.index(begin), content.index(end) + len(end)
        content = content[:start] + block + content[stop:]
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.replace(tmp, path)


def cpu_model():
    """The CPU's model name, for the machine line of every section."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"
