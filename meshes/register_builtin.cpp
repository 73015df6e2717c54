#include "meshes/kubernetes/kubernetes_router.hpp"
#include "meshes/router.hpp"

namespace serin::meshes {

void register_builtin_routers(RouterRegistry& registry) {
    registry.add("kubernetes", [](RouterDeps deps) { return make_kubernetes_router(deps); });
}

}  // namespace serin::meshes
