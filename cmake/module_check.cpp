// Nothing: whittle_check_MODULE links one module's static library whole into a shared
// library with --no-undefined (CMakeLists.txt), so that every symbol the module uses must come
// from the modules it links. This file only gives the shared library a source.
namespace whittle::module_check {
int anchor() { return 0; }
}  // namespace whittle::module_check
