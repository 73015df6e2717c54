#include "tests/support/fake_kube_client.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include "platform/core/base64.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"

namespace serin::testing {

namespace asio = boost::asio;
using kube::ResourceType;
using kube::WatchEvent;

namespace {

// ---- names and errors, worded as kube-apiserver words them
// ----------------------------------------

/// "deployments.apps", "configmaps": how the server names a resource in messages, and the key
/// under which objects are stored whatever the version.
std::string group_resource(const ResourceType& type) {
    return type.group.empty() ? type.resource : type.resource + "." + type.group;
}

/// The storage key: "ns/name", or "name" for cluster-scoped objects. Sorted as strings, as
/// etcd sorts its keys, which decides the order of a list.
std::string storage_key(std::string_view ns, std::string_view name) {
    return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

Error api_error(ErrorKind kind, int status, std::string message) {
    Error error = fail(kind, std::move(message));
    error.http_status = status;
    return error;
}

Error not_found(const ResourceType& type, std::string_view name) {
    return api_error(ErrorKind::kNotFound, 404,
                     group_resource(type) + " \"" + std::string(name) + "\" not found");
}

Error no_such_resource() {
    return api_error(ErrorKind::kNotFound, 404, "the server could not find the requested resource");
}

Error already_exists(const ResourceType& type, std::string_view name) {
    return api_error(ErrorKind::kAlreadyExists, 409,
                     group_resource(type) + " \"" + std::string(name) + "\" already exists");
}

Error conflict(const ResourceType& type, std::string_view name, std::string_view why) {
    return api_error(ErrorKind::kConflict, 409,
                     "Operation cannot be fulfilled on " + group_resource(type) + " \"" +
                         std::string(name) + "\": " + std::string(why));
}

constexpr std::string_view kStale =
    "the object has been modified; please apply your changes to the latest version and try "
    "again";

Error invalid(const ResourceType& type, std::string_view name, std::string field,
              std::string reason, std::string detail) {
    std::string kind = type.group.empty() ? type.kind : type.kind + "." + type.group;
    Error error =
        api_error(ErrorKind::kInvalid, 422,
                  kind + " \"" + std::string(name) + "\" is invalid: " + field + ": " + detail);
    error.causes.push_back(ErrorCause{std::move(field), std::move(reason), std::move(detail)});
    return error;
}

Error bad_request(std::string message) {
    return api_error(ErrorKind::kBadRequest, 400, std::move(message));
}

Error gone(std::string message) { return api_error(ErrorKind::kGone, 410, std::move(message)); }

// ---- JSON helpers -------------------------------------------------------------------------------

Json& metadata(Json& object) {
    Json& meta = object["metadata"];
    if (!meta.is_object()) {
        meta = Json::object();
    }
    return meta;
}

const Json* member(const Json& object, std::string_view key) {
    if (!object.is_object()) {
        return nullptr;
    }
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

const Json* meta_member(const Json& object, std::string_view key) {
    const Json* meta = member(object, "metadata");
    return meta == nullptr ? nullptr : member(*meta, key);
}

/// Erases `key` from the object `object`, if it is one.
void erase_member(Json& object, std::string_view key) {
    if (object.is_object()) {
        object.erase(std::string(key));
    }
}

std::vector<std::string> finalizers(const Json& object) {
    std::vector<std::string> out;
    if (const Json* list = meta_member(object, "finalizers"); list != nullptr && list->is_array()) {
        for (const Json& f : *list) {
            if (f.is_string()) {
                out.push_back(f.get<std::string>());
            }
        }
    }
    return out;
}

std::int64_t generation_of(const Json& object) {
    const Json* generation = meta_member(object, "generation");
    return generation != nullptr && generation->is_number_integer()
               ? generation->get<std::int64_t>()
               : 0;
}

std::optional<std::uint64_t> parse_version(std::string_view text) {
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

// ---- selectors
// ------------------------------------------------------------------------------------

std::string_view trim(std::string_view text) {
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
        text.remove_suffix(1);
    }
    return text;
}

/// One requirement of a label selector.
struct LabelRequirement {
    enum class Op { kExists, kNotExists, kIn, kNotIn };
    std::string key;
    Op op = Op::kExists;
    std::set<std::string> values;

    bool matches(const Json& labels) const {
        const Json* value = member(labels, key);
        const bool present = value != nullptr && value->is_string();
        switch (op) {
            case Op::kExists:
                return present;
            case Op::kNotExists:
                return !present;
            case Op::kIn:
                return present && values.count(value->get<std::string>()) > 0;
            case Op::kNotIn:
                return !present || values.count(value->get<std::string>()) == 0;
        }
        return false;
    }
};

/// A label selector in the syntax of the labelSelector parameter: "a=b,c!=d,e in (f,g),
/// h notin (i),j,!k" ("==" as "=").
class LabelSelector {
public:
    static Result<LabelSelector> parse(std::string_view text) {
        LabelSelector selector;
        std::vector<std::string_view> parts;
        int depth = 0;
        std::size_t start = 0;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '(') {
                ++depth;
            } else if (text[i] == ')') {
                --depth;
            } else if (text[i] == ',' && depth == 0) {
                parts.push_back(text.substr(start, i - start));
                start = i + 1;
            }
        }
        parts.push_back(text.substr(start));
        for (std::string_view part : parts) {
            part = trim(part);
            if (part.empty()) {
                if (parts.size() == 1) {
                    break;  // the empty selector selects everything
                }
                return bad(text);
            }
            auto requirement = parse_requirement(part);
            if (!requirement) {
                return bad(text);
            }
            selector.requirements_.push_back(std::move(*requirement));
        }
        return selector;
    }

    bool matches(const Json& object) const {
        static const Json kNoLabels = Json::object();
        const Json* labels = meta_member(object, "labels");
        for (const auto& requirement : requirements_) {
            if (!requirement.matches(labels != nullptr ? *labels : kNoLabels)) {
                return false;
            }
        }
        return true;
    }

private:
    static Error bad(std::string_view text) {
        return bad_request("unable to parse requirement: invalid label selector \"" +
                           std::string(text) + "\"");
    }

    static bool valid_key(std::string_view key) {
        return !key.empty() && key.find_first_of(" =!(),") == std::string_view::npos;
    }

    static std::optional<LabelRequirement> parse_requirement(std::string_view part) {
        LabelRequirement requirement;
        if (part.front() == '!') {
            requirement.key = std::string(trim(part.substr(1)));
            requirement.op = LabelRequirement::Op::kNotExists;
            return valid_key(requirement.key) ? std::optional(requirement) : std::nullopt;
        }
        if (auto paren = part.find('('); paren != std::string_view::npos) {
            if (part.back() != ')') {
                return std::nullopt;
            }
            std::string_view head = trim(part.substr(0, paren));
            auto space = head.rfind(' ');
            if (space == std::string_view::npos) {
                return std::nullopt;
            }
            std::string_view op = head.substr(space + 1);
            requirement.key = std::string(trim(head.substr(0, space)));
            if (op == "in") {
                requirement.op = LabelRequirement::Op::kIn;
            } else if (op == "notin") {
                requirement.op = LabelRequirement::Op::kNotIn;
            } else {
                return std::nullopt;
            }
            std::string_view list = part.substr(paren + 1, part.size() - paren - 2);
            while (true) {
                auto comma = list.find(',');
                requirement.values.insert(std::string(trim(list.substr(0, comma))));
                if (comma == std::string_view::npos) {
                    break;
                }
                list.remove_prefix(comma + 1);
            }
            return valid_key(requirement.key) ? std::optional(requirement) : std::nullopt;
        }
        auto op = part.find_first_of("=!");
        if (op == std::string_view::npos) {
            requirement.key = std::string(part);
            requirement.op = LabelRequirement::Op::kExists;
            return valid_key(requirement.key) ? std::optional(requirement) : std::nullopt;
        }
        requirement.key = std::string(trim(part.substr(0, op)));
        std::string_view rest = part.substr(op);
        if (rest.starts_with("!=")) {
            requirement.op = LabelRequirement::Op::kNotIn;
            rest.remove_prefix(2);
        } else if (rest.starts_with("==")) {
            requirement.op = LabelRequirement::Op::kIn;
            rest.remove_prefix(2);
        } else if (rest.starts_with("=")) {
            requirement.op = LabelRequirement::Op::kIn;
            rest.remove_prefix(1);
        } else {
            return std::nullopt;
        }
        rest = trim(rest);
        if (rest.find_first_of(" =!(),") != std::string_view::npos) {
            return std::nullopt;
        }
        requirement.values.insert(std::string(rest));
        return valid_key(requirement.key) ? std::optional(requirement) : std::nullopt;
    }

    std::vector<LabelRequirement> requirements_;
};

/// A field selector: "metadata.name=x,metadata.namespace!=y", the fields every type supports, and
/// an Event's involvedObject.{kind,name,namespace,uid} (the server takes those for Events only).
class FieldSelector {
public:
    static Result<FieldSelector> parse(std::string_view text) {
        FieldSelector selector;
        while (!trim(text).empty()) {
            auto comma = text.find(',');
            std::string_view part = trim(text.substr(0, comma));
            text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
            auto op = part.find_first_of("=!");
            if (op == std::string_view::npos) {
                return bad_request("invalid field selector: '" + std::string(part) + "'");
            }
            Term term;
            term.field = std::string(trim(part.substr(0, op)));
            std::string_view rest = part.substr(op);
            if (rest.starts_with("!=")) {
                term.equal = false;
                rest.remove_prefix(2);
            } else if (rest.starts_with("==")) {
                rest.remove_prefix(2);
            } else if (rest.starts_with("=")) {
                rest.remove_prefix(1);
            } else {
                return bad_request("invalid field selector: '" + std::string(part) + "'");
            }
            if (term.field != "metadata.name" && term.field != "metadata.namespace" &&
                term.field != "involvedObject.kind" && term.field != "involvedObject.name" &&
                term.field != "involvedObject.namespace" && term.field != "involvedObject.uid") {
                return bad_request("field label not supported: " + term.field);
            }
            term.value = std::string(trim(rest));
            selector.terms_.push_back(std::move(term));
        }
        return selector;
    }

    bool matches(const Json& object) const {
        for (const auto& term : terms_) {
            std::string actual;
            if (term.field == "metadata.name") {
                actual = kube::object_name(object);
            } else if (term.field == "metadata.namespace") {
                actual = kube::object_namespace(object);
            } else if (object.contains("involvedObject")) {
                actual = json_string(object["involvedObject"],
                                     std::string_view(term.field).substr(15));  // "involvedObject."
            }
            if ((actual == term.value) != term.equal) {
                return false;
            }
        }
        return true;
    }

private:
    struct Term {
        std::string field;
        bool equal = true;
        std::string value;
    };
    std::vector<Term> terms_;
};

// ---- strategic merge patch ----------------------------------------------------------------------

/// How a list field of a built-in type merges in a strategic merge patch: by the patchMergeKey
/// of its Go type, as a set of primitives, or replaced whole (""). `holder` is the field that
/// holds the object the list is in ("containers" for a container's ports).
std::string_view merge_key(std::string_view field, std::string_view holder) {
    static const std::map<std::string_view, std::string_view> kKeys = {
        {"containers", "name"},
        {"initContainers", "name"},
        {"ephemeralContainers", "name"},
        {"env", "name"},
        {"volumes", "name"},
        {"volumeMounts", "mountPath"},
        {"volumeDevices", "devicePath"},
        {"imagePullSecrets", "name"},
        {"hostAliases", "ip"},
        {"topologySpreadConstraints", "topologyKey"},
        {"ownerReferences", "uid"},
        {"conditions", "type"},
        {"finalizers", "*"},
    };
    if (field == "ports") {
        const bool container =
            holder == "containers" || holder == "initContainers" || holder == "ephemeralContainers";
        return container ? "containerPort" : "port";
    }
    auto it = kKeys.find(field);
    return it == kKeys.end() ? std::string_view() : it->second;
}

/// `value` without the patch directives in it, as the server stores a new list item.
Json strip_directives(Json value) {
    if (value.is_object()) {
        for (auto it = value.begin(); it != value.end();) {
            if (it.key().starts_with("$")) {
                it = value.erase(it);
            } else {
                *it = strip_directives(std::move(*it));
                ++it;
            }
        }
    } else if (value.is_array()) {
        for (auto& item : value) {
            item = strip_directives(std::move(item));
        }
    }
    return value;
}

void strategic_merge_object(Json& target, const Json& patch, std::string_view holder);

void strategic_merge_list(Json& target, const Json& patch, std::string_view field,
                          std::string_view holder) {
    const std::string_view key = merge_key(field, holder);
    const bool replace_directive = std::any_of(patch.begin(), patch.end(), [](const Json& item) {
        return item.is_object() && item.size() == 1 && item.value("$patch", "") == "replace";
    });
    if (key.empty() || !target.is_array() || replace_directive) {
        Json items = Json::array();
        for (const Json& item : patch) {
            const bool directive = item.is_object() && item.contains("$patch");
            if (!directive || item.value("$patch", "") == "merge") {
                items.push_back(strip_directives(item));
            }
        }
        target = std::move(items);
        return;
    }
    if (key == "*") {
        for (const Json& item : patch) {
            if (std::find(target.begin(), target.end(), item) == target.end()) {
                target.push_back(item);
            }
        }
        return;
    }
    for (const Json& item : patch) {
        if (!item.is_object() || !item.contains(std::string(key))) {
            target.push_back(strip_directives(item));
            continue;
        }
        const Json& id = item.at(std::string(key));
        auto found = std::find_if(target.begin(), target.end(), [&](const Json& existing) {
            const Json* existing_id = member(existing, key);
            return existing_id != nullptr && *existing_id == id;
        });
        if (item.value("$patch", "") == "delete") {
            if (found != target.end()) {
                target.erase(found);
            }
        } else if (found != target.end()) {
            strategic_merge_object(*found, item, field);
        } else {
            target.push_back(strip_directives(item));
        }
    }
}

/// A strategic merge patch as kube-apiserver applies it to a built-in object: maps merge as in a
/// merge patch; lists with a merge key merge item by item; "$patch": "replace" | "delete" and
/// "$deleteFromPrimitiveList/<field>" are obeyed; "$setElementOrder" and "$retainKeys" are
/// accepted and ignored (order and retained keys are not simulated).
void strategic_merge_object(Json& target, const Json& patch, std::string_view holder) {
    if (!target.is_object()) {
        target = Json::object();
    }
    if (patch.value("$patch", "") == "replace") {
        target = strip_directives(patch);
        return;
    }
    for (const auto& [key, value] : patch.items()) {
        if (key.starts_with("$deleteFromPrimitiveList/")) {
            const std::string field =
                key.substr(std::string_view("$deleteFromPrimitiveList/").size());
            if (auto it = target.find(field);
                it != target.end() && it->is_array() && value.is_array()) {
                Json kept = Json::array();
                for (const Json& item : *it) {
                    if (std::find(value.begin(), value.end(), item) == value.end()) {
                        kept.push_back(item);
                    }
                }
                *it = std::move(kept);
            }
        } else if (key.starts_with("$")) {
            continue;
        } else if (value.is_null()) {
            target.erase(key);
        } else if (value.is_object()) {
            if (value.value("$patch", "") == "delete") {
                target.erase(key);
            } else {
                strategic_merge_object(target[key], value, key);
            }
        } else if (value.is_array()) {
            strategic_merge_list(target[key], value, key, holder);
        } else {
            target[key] = value;
        }
    }
}

}  // namespace

// ---- calls, matchers, records
// ---------------------------------------------------------------------

std::string_view to_string(Verb verb) {
    switch (verb) {
        case Verb::kGet:
            return "get";
        case Verb::kList:
            return "list";
        case Verb::kWatch:
            return "watch";
        case Verb::kCreate:
            return "create";
        case Verb::kUpdate:
            return "update";
        case Verb::kPatch:
            return "patch";
        case Verb::kDelete:
            return "delete";
        case Verb::kGetRaw:
            return "get_raw";
    }
    return "?";
}

bool Call::is_write() const {
    return verb == Verb::kCreate || verb == Verb::kUpdate || verb == Verb::kPatch ||
           verb == Verb::kDelete;
}

namespace {
bool same_resource(const ResourceType& a, const ResourceType& b) {
    return a.group == b.group && a.resource == b.resource;
}
}  // namespace

CallMatcher any_call() {
    return [](const Call&) { return true; };
}

CallMatcher calls(Verb verb) {
    return [verb](const Call& call) { return call.verb == verb; };
}

CallMatcher calls(Verb verb, const ResourceType& type) {
    return [verb, type](const Call& call) {
        return call.verb == verb && same_resource(call.type, type);
    };
}

CallMatcher writes() {
    return [](const Call& call) { return call.is_write(); };
}

CallMatcher writes_to(const ResourceType& type, std::string name) {
    return [type, name = std::move(name)](const Call& call) {
        return call.is_write() && same_resource(call.type, type) &&
               (name.empty() || call.name == name);
    };
}

std::string WriteRecord::describe() const {
    std::string text = std::string(to_string(call.verb)) + " " + call.type.resource + " " +
                       storage_key(call.ns, call.name);
    if (!call.subresource.empty()) {
        text += "/" + call.subresource;
    }
    if (dry_run) {
        text += " (dry run)";
    }
    if (error && applied) {
        text += " -> applied, answer lost: " + std::string(serin::to_string(error->kind));
    } else if (error) {
        text += " -> " + std::string(serin::to_string(error->kind));
    }
    return text;
}

TypeTraits builtin_traits(const ResourceType& type) {
    // From the registry strategies of kube-apiserver v1.20 (pkg/registry/...): which types have
    // a status subresource and which set metadata.generation.
    struct Known {
        bool status;
        bool generation;
    };
    static const std::map<std::string, Known, std::less<>> kBuiltin = {
        {"pods", {true, false}},
        {"services", {true, false}},
        {"namespaces", {true, false}},
        {"nodes", {true, false}},
        {"persistentvolumeclaims", {true, false}},
        {"replicationcontrollers", {true, true}},
        {"configmaps", {false, false}},
        {"secrets", {false, false}},
        {"events", {false, false}},
        {"serviceaccounts", {false, false}},
        {"endpoints", {false, false}},
        {"deployments.apps", {true, true}},
        {"daemonsets.apps", {true, true}},
        {"replicasets.apps", {true, true}},
        {"statefulsets.apps", {true, true}},
        {"horizontalpodautoscalers.autoscaling", {true, false}},
        {"jobs.batch", {true, false}},
        {"cronjobs.batch", {true, false}},
        {"leases.coordination.k8s.io", {false, false}},
        {"events.events.k8s.io", {false, false}},
        {"customresourcedefinitions.apiextensions.k8s.io", {true, true}},
        {"clusterroles.rbac.authorization.k8s.io", {false, false}},
        {"clusterrolebindings.rbac.authorization.k8s.io", {false, false}},
        {"roles.rbac.authorization.k8s.io", {false, false}},
        {"rolebindings.rbac.authorization.k8s.io", {false, false}},
        {"ingresses.networking.k8s.io", {true, true}},
    };
    auto it = kBuiltin.find(group_resource(type));
    if (it == kBuiltin.end()) {
        return TypeTraits{};
    }
    return TypeTraits{it->second.status, it->second.generation, true};
}

// ---- the server's state -------------------------------------------------------------------------

namespace {

/// A served group/resource.
struct Served {
    ResourceType type;  ///< as first served; the versions below share its objects
    TypeTraits traits;
    std::set<std::string> versions;
};

/// One change in the server's history, what a watch replays.
struct Change {
    enum class Kind { kAdded, kModified, kDeleted, kBookmark };
    std::uint64_t resource_version = 0;
    Kind kind = Kind::kAdded;
    std::string group_resource;  ///< "" for a bookmark to every watch
    std::string ns;
    Json object;    ///< after the change; a deleted object's last state with the delete's version
    Json previous;  ///< before the change; null for an add
};

/// A watch in progress: its filter, how far it has read the history, and the timer it sleeps
/// on. Owned by the watch's coroutine (and its timeout's); the server holds a weak pointer.
struct Watch {
    explicit Watch(const asio::any_io_executor& executor) : wake(executor, SteadyTime::max()) {}

    std::uint64_t client = 0;
    ResourceType type;
    std::string group_resource;
    std::string ns;
    LabelSelector labels;
    FieldSelector fields;
    bool bookmarks = false;
    bool metadata_only = false;
    std::deque<Json> initial;  ///< synthetic ADDED events of a watch from "" or "0"
    std::size_t next = 0;      ///< the next Change to look at
    bool finished = false;     ///< the coroutine has returned
    bool ended = false;        ///< the server ended it (end_watches, a crash)
    std::optional<Error> end_error;
    bool timed_out = false;
    asio::steady_timer wake;  ///< never expires; cancel() wakes the coroutine
    asio::cancellation_signal stop_timeout;

    void poke() { wake.cancel(); }
    bool matches(const Json& object) const {
        return (ns.empty() || kube::object_namespace(object) == ns) && labels.matches(object) &&
               fields.matches(object);
    }
};

struct Fault {
    CallMatcher match;
    int remaining = 0;
    Error error;
    FaultTiming timing = FaultTiming::kBeforeServer;
};

using Objects = std::map<std::string, Json>;  // storage key -> object

}  // namespace

struct FakeApiServer::Impl {
    explicit Impl(Clock& c) : clock(c) {}

    Clock& clock;
    /// The resourceVersion counter (etcd's revision); starts well above "0", which means "any".
    std::uint64_t revision = 1000;
    std::uint64_t compacted = 0;
    std::uint64_t uids = 0;
    std::uint64_t generated_names = 0;
    std::uint64_t cluster_ips = 0;
    std::uint64_t clients = 0;
    std::map<std::string, Served> served;   // group/resource -> how
    std::map<std::string, Objects> stored;  // group/resource -> objects
    std::vector<Change> history;
    std::vector<std::weak_ptr<Watch>> watches;
    std::vector<Fault> faults;
    std::vector<WriteRecord> writes;

    // ---- helpers ----

    const Served* find_served(const ResourceType& type) const {
        auto it = served.find(group_resource(type));
        if (it == served.end() || it->second.versions.count(type.version) == 0) {
            return nullptr;
        }
        return &it->second;
    }

    static std::string scope(const ResourceType& type, std::string_view ns) {
        return type.namespaced ? std::string(ns) : std::string();
    }

    /// The object as an answer names it: the apiVersion the caller asked for.
    static Json present(Json object, const ResourceType& type) {
        object["apiVersion"] = type.api_version();
        object["kind"] = type.kind;
        return object;
    }

    static Json metadata_only(const Json& object) {
        const Json* meta = member(object, "metadata");
        return Json{{"apiVersion", "meta.k8s.io/v1"},
                    {"kind", "PartialObjectMetadata"},
                    {"metadata", meta != nullptr ? *meta : Json::object()}};
    }

    std::string now() const { return format_time(clock.system_now()); }

    std::string next_uid() {
        char buffer[40];
        std::snprintf(buffer, sizeof(buffer), "00000000-0000-4000-8000-%012llx",
                      static_cast<unsigned long long>(++uids));
        return buffer;
    }

    /// Stores `next` under a new resourceVersion (or removes it) and records the change.
    Json commit(const std::string& gr, const std::string& key, Json next, const Json* previous,
                bool deleting) {
        ++revision;
        metadata(next)["resourceVersion"] = std::to_string(revision);
        Change change;
        change.resource_version = revision;
        change.group_resource = gr;
        change.ns = kube::object_namespace(next);
        if (deleting) {
            // The DELETED event carries the last stored state (not what a final update asked
            // for), at the delete's version: the etcd delete's previous value.
            Json last = *previous;
            metadata(last)["resourceVersion"] = std::to_string(revision);
            change.kind = Change::Kind::kDeleted;
            change.object = std::move(last);
            change.previous = *previous;
            stored[gr].erase(key);
        } else {
            change.kind = previous == nullptr ? Change::Kind::kAdded : Change::Kind::kModified;
            change.object = next;
            change.previous = previous == nullptr ? Json() : *previous;
            stored[gr][key] = next;
        }
        history.push_back(std::move(change));
        wake_watches();
        return next;
    }

    void wake_watches() {
        for (auto it = watches.begin(); it != watches.end();) {
            if (auto watch = it->lock(); watch && !watch->finished) {
                watch->poke();
                ++it;
            } else {
                it = watches.erase(it);
            }
        }
    }

    /// The objects of `gr` as they were at `revision` (from the history, which is never
    /// dropped: compaction only forbids asking for it).
    Objects snapshot(const std::string& gr, std::uint64_t at) const {
        if (at >= revision) {
            auto it = stored.find(gr);
            return it == stored.end() ? Objects() : it->second;
        }
        Objects objects;
        for (const Change& change : history) {
            if (change.resource_version > at) {
                break;
            }
            if (change.group_resource != gr) {
                continue;
            }
            const std::string key = storage_key(change.ns, kube::object_name(change.object));
            if (change.kind == Change::Kind::kDeleted) {
                objects.erase(key);
            } else {
                objects[key] = change.object;
            }
        }
        return objects;
    }

    std::optional<Error> take_fault(const Call& call, FaultTiming phase) {
        for (auto it = faults.begin(); it != faults.end(); ++it) {
            // Only a write can lose its answer after the server acted; for other calls both
            // timings mean the call fails.
            const FaultTiming timing = call.is_write() ? it->timing : FaultTiming::kBeforeServer;
            if (timing != phase || it->remaining <= 0 || !it->match(call)) {
                continue;
            }
            Error error = it->error;
            if (--it->remaining == 0) {
                faults.erase(it);
            }
            return error;
        }
        return std::nullopt;
    }

    void end_watches(const std::function<bool(const Watch&)>& which,
                     const std::optional<Error>& error) {
        for (auto& weak : watches) {
            if (auto watch = weak.lock(); watch && !watch->finished && which(*watch)) {
                watch->ended = true;
                watch->end_error = error;
                watch->poke();
            }
        }
    }

    // ---- what the server does with a request ----

    Result<Json> get(const ResourceType& type, std::string_view ns, std::string_view name) const {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        auto objects = stored.find(group_resource(type));
        if (objects == stored.end()) {
            return not_found(type, name);
        }
        auto it = objects->second.find(storage_key(scope(type, ns), name));
        if (it == objects->second.end()) {
            return not_found(type, name);
        }
        return Result<Json>(boost::system::in_place_value, present(it->second, type));
    }

    Result<kube::ListPage> list(const ResourceType& type, std::string_view ns_in,
                                const kube::ListOptions& options) const {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        const std::string ns = scope(type, ns_in);
        auto labels = LabelSelector::parse(options.label_selector);
        if (!labels) {
            return labels.error();
        }
        auto fields = FieldSelector::parse(options.field_selector);
        if (!fields) {
            return fields.error();
        }
        std::uint64_t at = revision;
        std::string start;
        std::int64_t limit = options.limit;
        if (!options.continue_token.empty()) {
            if (!options.resource_version.empty() && options.resource_version != "0") {
                return bad_request(
                    "specifying resource version is not allowed when using continue");
            }
            auto token = decode_continue(options.continue_token);
            if (!token) {
                return token.error();
            }
            if (token->first < compacted) {
                return gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue value from the response to start a new list from the most "
                    "recent resourceVersion.");
            }
            at = token->first;
            start = token->second;
        } else if (!options.resource_version.empty() && options.resource_version != "0") {
            auto asked = parse_version(options.resource_version);
            if (!asked) {
                return bad_request("invalid resourceVersion \"" + options.resource_version + "\"");
            }
            if (*asked > revision) {
                // The real server waits up to 3 s for its cache to catch up, then says this.
                return api_error(ErrorKind::kTransient, 504,
                                 "Too large resource version: " + options.resource_version +
                                     ", current: " + std::to_string(revision));
            }
            if (limit > 0) {
                // A paged list at a version is read from etcd at exactly that revision.
                if (*asked < compacted) {
                    return gone("too old resource version: " + options.resource_version + " (" +
                                std::to_string(compacted) + ")");
                }
                at = *asked;
            }
        } else if (options.resource_version == "0") {
            limit = 0;  // served from the watch cache, which ignores limit
        }
        const Objects objects = snapshot(group_resource(type), at);
        kube::ListPage page;
        page.resource_version = std::to_string(at);
        for (auto it = objects.lower_bound(start); it != objects.end(); ++it) {
            const Json& object = it->second;
            if ((!ns.empty() && kube::object_namespace(object) != ns) || !labels->matches(object) ||
                !fields->matches(object)) {
                continue;
            }
            if (limit > 0 && static_cast<std::int64_t>(page.items.size()) == limit) {
                page.continue_token = encode_continue(at, std::prev(it)->first);
                break;
            }
            // RestKubeClient gives LIST items the list's apiVersion and kind, metadata-only
            // ones included.
            page.items.push_back(
                present(options.metadata_only ? metadata_only(object) : object, type));
        }
        return page;
    }

    static std::string encode_continue(std::uint64_t at, const std::string& last_key) {
        // As the real server encodes it: the revision and the key to start after.
        Json token = {{"v", "meta.k8s.io/v1"}, {"rv", at}, {"start", last_key + '\0'}};
        return encode_base64(token.dump());
    }

    static Result<std::pair<std::uint64_t, std::string>> decode_continue(const std::string& text) {
        auto decoded = decode_base64(text);
        Json token = decoded ? Json::parse(*decoded, nullptr, false) : Json();
        if (!token.is_object() || !token.contains("rv") || !token["rv"].is_number_unsigned() ||
            !token.contains("start") || !token["start"].is_string()) {
            return bad_request("continue key is not valid: " + text);
        }
        return std::pair{token["rv"].get<std::uint64_t>(), token["start"].get<std::string>()};
    }

    /// Checks a name as metadata validation does: an RFC 1123 subdomain (a label for
    /// Namespaces and Services).
    static std::optional<Error> check_name(const ResourceType& type, const std::string& name) {
        const bool label =
            type.group.empty() && (type.resource == "namespaces" || type.resource == "services");
        const std::size_t max = label ? 63 : 253;
        auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
        bool ok = !name.empty() && name.size() <= max && alnum(name.front()) && alnum(name.back());
        for (char c : name) {
            ok = ok && (alnum(c) || c == '-' || (c == '.' && !label));
        }
        if (ok) {
            return std::nullopt;
        }
        return invalid(type, name, "metadata.name", "FieldValueInvalid",
                       "Invalid value: \"" + name + "\": a lowercase RFC 1123 " +
                           (label ? "label" : "subdomain") +
                           " must consist of lower case alphanumeric characters, '-'" +
                           (label ? "" : " or '.'") +
                           ", and must start and end with an alphanumeric character");
    }

    std::string generate_name(const std::string& gr, const std::string& ns,
                              const std::string& prefix) {
        // Five characters from the alphabet the server uses, deterministic here.
        static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
        while (true) {
            std::uint64_t n = ++generated_names;
            std::string suffix;
            for (int i = 0; i < 5; ++i) {
                suffix += kAlphabet[n % kAlphabet.size()];
                n /= kAlphabet.size();
            }
            std::string name = prefix + suffix;
            if (stored[gr].count(storage_key(ns, name)) == 0) {
                return name;
            }
        }
    }

    /// Checks the namespace of a write's body against the request's, as BeforeCreate and
    /// BeforeUpdate do, and returns the namespace to use.
    static Result<std::string> write_namespace(const ResourceType& type, std::string_view ns,
                                               Json& object) {
        if (!type.namespaced) {
            erase_member(metadata(object), "namespace");
            return std::string();
        }
        std::string in_body = kube::object_namespace(object);
        if (ns.empty() && in_body.empty()) {
            return api_error(ErrorKind::kBadRequest, 405,
                             "the server does not allow this method on the requested resource");
        }
        if (!ns.empty() && !in_body.empty() && in_body != ns) {
            return bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request");
        }
        std::string chosen = ns.empty() ? in_body : std::string(ns);
        metadata(object)["namespace"] = chosen;
        return chosen;
    }

    static std::optional<Error> check_kind(const ResourceType& type, const Json& object) {
        const Json* kind = member(object, "kind");
        if (kind != nullptr && kind->is_string() && kind->get<std::string>() != type.kind) {
            return bad_request("the kind of the object (" + kind->get<std::string>() +
                               ") does not match the resource (" + type.kind + ")");
        }
        return std::nullopt;
    }

    /// The status a built-in type's create leaves (its Go status struct, zero).
    static Json initial_status(const ResourceType& type) {
        const std::string gr = group_resource(type);
        if (gr == "services") {
            return Json{{"loadBalancer", Json::object()}};
        }
        if (gr == "horizontalpodautoscalers.autoscaling") {
            return Json{{"currentReplicas", 0}, {"desiredReplicas", 0}};
        }
        if (gr == "namespaces") {
            return Json{{"phase", "Active"}};
        }
        if (gr == "pods") {
            return Json{{"phase", "Pending"}};
        }
        return Json::object();
    }

    /// Folds a Secret's stringData into base64 data, as the Secret strategy does.
    static void fold_string_data(Json& secret) {
        auto string_data = secret.find("stringData");
        if (string_data == secret.end()) {
            return;
        }
        if (string_data->is_object()) {
            Json& data = secret["data"];
            if (!data.is_object()) {
                data = Json::object();
            }
            for (const auto& [key, value] : string_data->items()) {
                if (value.is_string()) {
                    data[key] = encode_base64(value.get<std::string>());
                }
            }
        }
        secret.erase("stringData");
    }

    static Json string_list(const Json& object, std::initializer_list<const char*> path) {
        const Json* at = &object;
        for (const char* key : path) {
            at = member(*at, key);
            if (at == nullptr) {
                return Json::array();
            }
        }
        return at->is_array() ? *at : Json::array();
    }

    void allocate_cluster_ip(Json& service) {
        Json& spec = service["spec"];
        if (!spec.is_object()) {
            spec = Json::object();
        }
        if (spec.value("type", "") == "ExternalName") {
            return;
        }
        std::string ip = json_string(spec, "clusterIP");
        if (ip.empty()) {
            ++cluster_ips;
            ip = "10.96." + std::to_string(cluster_ips / 250) + "." +
                 std::to_string(cluster_ips % 250 + 1);
            spec["clusterIP"] = ip;
        }
        if (string_list(service, {"spec", "clusterIPs"}).empty()) {
            spec["clusterIPs"] = Json::array({ip});
        }
    }

    /// The checks and fix-ups of one kind's update strategy the fake keeps.
    static std::optional<Error> type_update_rules(const ResourceType& type, const Json& old,
                                                  Json& next) {
        const std::string gr = group_resource(type);
        const std::string name = kube::object_name(old);
        if (type.group == "apps") {
            const Json* old_spec = member(old, "spec");
            const Json* new_spec = member(next, "spec");
            const Json* old_selector =
                old_spec != nullptr ? member(*old_spec, "selector") : nullptr;
            const Json* new_selector =
                new_spec != nullptr ? member(*new_spec, "selector") : nullptr;
            const Json a = old_selector != nullptr ? *old_selector : Json();
            const Json b = new_selector != nullptr ? *new_selector : Json();
            if (a != b) {
                return invalid(type, name, "spec.selector", "FieldValueInvalid",
                               "Invalid value: " + show_json(b) + ": field is immutable");
            }
        }
        if (gr == "services") {
            // NormalizeClusterIPs and validateUpgradeDowngradeClusterIPs of v1.20: a write that
            // keeps clusterIP may leave clusterIPs out; one that drops both unsets the primary
            // IP, which is refused, as is any change.
            const Json* old_spec = member(old, "spec");
            Json& spec = next["spec"];
            if (!spec.is_object()) {
                spec = Json::object();
            }
            const bool external =
                spec.value("type", "") == "ExternalName" ||
                (old_spec != nullptr && old_spec->value("type", "") == "ExternalName");
            const Json old_ips = string_list(old, {"spec", "clusterIPs"});
            Json new_ips = string_list(next, {"spec", "clusterIPs"});
            const std::string old_ip =
                old_spec != nullptr ? json_string(*old_spec, "clusterIP") : "";
            if (!old_ips.empty() && new_ips.empty() && json_string(spec, "clusterIP") == old_ip) {
                spec["clusterIPs"] = old_ips;
                new_ips = old_ips;
            }
            if (!external && old_ip != "None") {
                if (!old_ips.empty() && new_ips.empty()) {
                    return invalid(type, name, "spec.clusterIPs[0]", "FieldValueInvalid",
                                   "Invalid value: []string(nil): primary clusterIP can not be "
                                   "unset");
                }
                if (!old_ips.empty() && new_ips.at(0) != old_ips.at(0)) {
                    return invalid(
                        type, name, "spec.clusterIPs[0]", "FieldValueInvalid",
                        "Invalid value: " + show_json(new_ips) + ": may not change once set");
                }
            }
        }
        if (gr == "secrets") {
            fold_string_data(next);
        }
        return std::nullopt;
    }

    /// What a change of which bumps metadata.generation.
    static Json generation_input(const Served& s, const Json& object) {
        if (!s.traits.builtin) {
            Json copy = object;
            copy.erase("metadata");
            copy.erase("apiVersion");
            copy.erase("kind");
            return copy;
        }
        const Json* spec = member(object, "spec");
        Json input = {{"spec", spec != nullptr ? *spec : Json()}};
        if (group_resource(s.type) == "deployments.apps") {
            // Annotations are copied to the ReplicaSets, so they count (deployment strategy).
            const Json* annotations = meta_member(object, "annotations");
            input["annotations"] = annotations != nullptr ? *annotations : Json();
        }
        return input;
    }

    Result<Json> create(const ResourceType& type, std::string_view ns_in, Json object, bool dry_run,
                        bool keep_status) {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        if (!object.is_object()) {
            return bad_request("the body of the request is not an object");
        }
        if (auto wrong = check_kind(type, object)) {
            return *wrong;
        }
        auto ns = write_namespace(type, ns_in, object);
        if (!ns) {
            return ns.error();
        }
        const std::string gr = group_resource(type);
        Json& meta = metadata(object);
        if (!json_string(meta, "resourceVersion").empty()) {
            // etcd3's store refuses it with a plain error, which the server answers with 500.
            return api_error(ErrorKind::kTransient, 500,
                             "resourceVersion should not be set on objects to be created");
        }
        std::string name = json_string(meta, "name");
        if (name.empty()) {
            const std::string prefix = json_string(meta, "generateName");
            if (prefix.empty()) {
                return invalid(type, "", "metadata.name", "FieldValueRequired",
                               "Required value: name or generateName is required");
            }
            name = generate_name(gr, *ns, prefix);
            meta["name"] = name;
        }
        if (auto bad = check_name(type, name)) {
            return *bad;
        }
        const std::string key = storage_key(*ns, name);
        if (stored[gr].count(key) > 0) {
            return already_exists(type, name);
        }
        meta.erase("deletionTimestamp");
        meta.erase("deletionGracePeriodSeconds");
        meta.erase("managedFields");
        meta["uid"] = next_uid();
        meta["creationTimestamp"] = now();
        if (s->traits.generation) {
            meta["generation"] = 1;
        }
        if (s->traits.status_subresource && !keep_status) {
            if (s->traits.builtin) {
                object["status"] = initial_status(type);
            } else {
                object.erase("status");
            }
        }
        if (gr == "secrets") {
            fold_string_data(object);
        }
        if (gr == "services") {
            allocate_cluster_ip(object);
        }
        object["apiVersion"] = s->type.api_version();
        object["kind"] = s->type.kind;
        if (dry_run) {
            return Result<Json>(boost::system::in_place_value, present(std::move(object), type));
        }
        return Result<Json>(boost::system::in_place_value,
                            present(commit(gr, key, std::move(object), nullptr, false), type));
    }

    /// Looks up the object a write addresses.
    Result<const Json*> existing(const ResourceType& type, const std::string& key,
                                 std::string_view name) const {
        auto objects = stored.find(group_resource(type));
        if (objects == stored.end()) {
            return not_found(type, name);
        }
        auto it = objects->second.find(key);
        if (it == objects->second.end()) {
            return not_found(type, name);
        }
        return &it->second;
    }

    static Result<void> check_subresource(const Served& s, const std::string& subresource) {
        if (subresource.empty()) {
            return Result<void>{};
        }
        if (subresource != "status") {
            return fail(ErrorKind::kInternal,
                        "FakeApiServer serves no subresource \"" + subresource + "\"");
        }
        if (!s.traits.status_subresource) {
            return no_such_resource();
        }
        return Result<void>{};
    }

    /// The part of an update shared by PUT and PATCH: `candidate` is the object the caller
    /// wants; the rules of the type decide what is stored.
    Result<Json> write(const Served& s, const ResourceType& type, const std::string& key,
                       const Json& old, Json candidate, bool status_only, bool dry_run) {
        const std::string gr = group_resource(type);
        const std::string name = kube::object_name(old);
        Json next;
        if (status_only && !s.traits.builtin) {
            // A custom resource's /status writes nothing but the status.
            next = old;
            if (auto status = candidate.find("status"); status != candidate.end()) {
                next["status"] = *status;
            } else {
                next.erase("status");
            }
        } else {
            next = std::move(candidate);
            if (status_only) {
                // A built-in type's /status keeps the stored spec, and what else its status
                // strategy names; metadata changes go through.
                if (const Json* spec = member(old, "spec")) {
                    next["spec"] = *spec;
                } else {
                    erase_member(next, "spec");
                }
                if (gr == "deployments.apps") {
                    copy_meta(old, next, "labels");
                } else if (gr == "pods") {
                    copy_meta(old, next, "ownerReferences");
                }
            } else if (s.traits.status_subresource) {
                if (const Json* status = member(old, "status")) {
                    next["status"] = *status;
                } else {
                    erase_member(next, "status");
                }
            }
            Json& meta = metadata(next);
            meta["name"] = name;
            if (type.namespaced) {
                meta["namespace"] = kube::object_namespace(old);
            } else {
                meta.erase("namespace");
            }
            // What BeforeUpdate keeps whatever the caller sent.
            for (const char* field : {"uid", "creationTimestamp", "deletionTimestamp",
                                      "deletionGracePeriodSeconds", "generation"}) {
                copy_meta(old, next, field);
            }
            meta.erase("managedFields");
            if (meta_member(old, "deletionTimestamp") != nullptr) {
                const auto before = finalizers(old);
                for (const std::string& f : finalizers(next)) {
                    if (std::find(before.begin(), before.end(), f) == before.end()) {
                        return invalid(type, name, "metadata.finalizers", "FieldValueForbidden",
                                       "Forbidden: no new finalizers can be added if the object "
                                       "is being deleted, found new finalizers []string{\"" +
                                           f + "\"}");
                    }
                }
            }
            if (!status_only) {
                if (auto refused = type_update_rules(type, old, next)) {
                    return *refused;
                }
            }
            if (s.traits.generation && !status_only &&
                generation_input(s, next) != generation_input(s, old)) {
                meta["generation"] = generation_of(old) + 1;
            }
        }
        next["apiVersion"] = s.type.api_version();
        next["kind"] = s.type.kind;
        metadata(next)["resourceVersion"] = kube::object_resource_version(old);
        if (next == old) {
            // etcd3's GuaranteedUpdate writes nothing when the bytes are the same: no new
            // resourceVersion, no watch event.
            return Result<Json>(boost::system::in_place_value, present(old, type));
        }
        const bool deleting =
            meta_member(old, "deletionTimestamp") != nullptr && finalizers(next).empty();
        if (dry_run) {
            return Result<Json>(boost::system::in_place_value, present(std::move(next), type));
        }
        if (deleting) {
            // The last finalizer is gone: the object is deleted, and the caller gets back what
            // it sent (deleteWithoutFinalizers).
            commit(gr, key, old, &old, true);
            return Result<Json>(boost::system::in_place_value, present(std::move(next), type));
        }
        return Result<Json>(boost::system::in_place_value,
                            present(commit(gr, key, std::move(next), &old, false), type));
    }

    static void copy_meta(const Json& from, Json& to, const char* field) {
        if (const Json* value = meta_member(from, field)) {
            metadata(to)[field] = *value;
        } else {
            erase_member(metadata(to), field);
        }
    }

    Result<Json> update(const ResourceType& type, std::string_view ns_in, Json object,
                        const kube::WriteOptions& options) {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        if (auto sub = check_subresource(*s, options.subresource); !sub) {
            return sub.error();
        }
        if (!object.is_object()) {
            return bad_request("the body of the request is not an object");
        }
        if (auto wrong = check_kind(type, object)) {
            return *wrong;
        }
        const std::string name = kube::object_name(object);
        if (name.empty()) {
            return api_error(ErrorKind::kBadRequest, 405,
                             "the server does not allow this method on the requested resource");
        }
        auto ns = write_namespace(type, ns_in, object);
        if (!ns) {
            return ns.error();
        }
        const std::string key = storage_key(*ns, name);
        auto old = existing(type, key, name);
        if (!old) {
            return old.error();
        }
        if (auto refused = preconditions(type, **old, object)) {
            return *refused;
        }
        return write(*s, type, key, **old, std::move(object), options.subresource == "status",
                     options.dry_run);
    }

    /// The resourceVersion and uid in a write's body are preconditions.
    static std::optional<Error> preconditions(const ResourceType& type, const Json& old,
                                              const Json& wanted) {
        const std::string name = kube::object_name(old);
        const std::string version = kube::object_resource_version(wanted);
        if (!version.empty() && version != kube::object_resource_version(old)) {
            return conflict(type, name, kStale);
        }
        const std::string uid = kube::object_uid(wanted);
        if (!uid.empty() && uid != kube::object_uid(old)) {
            return conflict(type, name,
                            "Precondition failed: UID in precondition: " + uid +
                                ", UID in object meta: " + kube::object_uid(old));
        }
        return std::nullopt;
    }

    Result<Json> patch(const ResourceType& type, std::string_view ns_in, const std::string& name,
                       kube::PatchType patch_type, const std::string& body,
                       const kube::WriteOptions& options) {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        if (auto sub = check_subresource(*s, options.subresource); !sub) {
            return sub.error();
        }
        const std::string ns = scope(type, ns_in);
        const std::string key = storage_key(ns, name);
        if (patch_type == kube::PatchType::kApply) {
            return fail(ErrorKind::kInternal, "FakeApiServer does not simulate server-side apply");
        }
        auto old = existing(type, key, name);
        if (!old) {
            return old.error();
        }
        Json patched = **old;
        const Json patch = Json::parse(body, nullptr, false);
        if (patch.is_discarded()) {
            return bad_request("the patch is not JSON: " + body);
        }
        switch (patch_type) {
            case kube::PatchType::kMerge:
                if (!patch.is_object()) {
                    return bad_request("a merge patch must be a JSON object");
                }
                patched.merge_patch(patch);
                break;
            case kube::PatchType::kJson:
                if (!patch.is_array()) {
                    return bad_request("a JSON patch must be a JSON array of operations");
                }
                try {
                    patched = patched.patch(patch);
                } catch (const nlohmann::json::exception& e) {
                    return api_error(ErrorKind::kInvalid, 422,
                                     std::string("the server rejected our request due to an "
                                                 "error in our request: ") +
                                         e.what());
                }
                break;
            case kube::PatchType::kStrategicMerge:
                if (!s->traits.builtin) {
                    return api_error(ErrorKind::kBadRequest, 415,
                                     "the body of the request was in an unknown format - "
                                     "accepted media types include: "
                                     "application/json-patch+json, "
                                     "application/merge-patch+json, "
                                     "application/apply-patch+yaml");
                }
                if (!patch.is_object()) {
                    return bad_request("a strategic merge patch must be a JSON object");
                }
                strategic_merge_object(patched, patch, "");
                break;
            case kube::PatchType::kApply:
                break;
        }
        if (!patched.is_object()) {
            return bad_request("the patched object is not an object");
        }
        if (kube::object_name(patched) != name) {
            return bad_request("the name of the object (" + kube::object_name(patched) +
                               ") does not match the name on the URL (" + name + ")");
        }
        if (auto refused = preconditions(type, **old, patched)) {
            return *refused;
        }
        return write(*s, type, key, **old, std::move(patched), options.subresource == "status",
                     options.dry_run);
    }

    Result<Json> remove(const ResourceType& type, std::string_view ns_in, const std::string& name,
                        const kube::DeleteOptions& options, bool dry_run) {
        const Served* s = find_served(type);
        if (s == nullptr) {
            return no_such_resource();
        }
        const std::string ns = scope(type, ns_in);
        const std::string key = storage_key(ns, name);
        auto found = existing(type, key, name);
        if (!found) {
            return found.error();
        }
        const Json& old = **found;
        if (options.precondition_resource_version &&
            *options.precondition_resource_version != kube::object_resource_version(old)) {
            return conflict(
                type, name,
                "Precondition failed: ResourceVersion in precondition: " +
                    *options.precondition_resource_version +
                    ", ResourceVersion in object meta: " + kube::object_resource_version(old));
        }
        const std::string gr = group_resource(type);
        if (!finalizers(old).empty()) {
            if (meta_member(old, "deletionTimestamp") != nullptr) {
                return Result<Json>(boost::system::in_place_value, present(old, type));
            }
            // markAsDeleting: the finalizers' owners act on the timestamp.
            Json next = old;
            Json& meta = metadata(next);
            if (generation_of(old) > 0) {
                meta["generation"] = generation_of(old) + 1;
            }
            meta["deletionTimestamp"] = now();
            meta["deletionGracePeriodSeconds"] = 0;
            if (dry_run) {
                return Result<Json>(boost::system::in_place_value, present(std::move(next), type));
            }
            return Result<Json>(boost::system::in_place_value,
                                present(commit(gr, key, std::move(next), &old, false), type));
        }
        if (dry_run) {
            return Result<Json>(boost::system::in_place_value, present(old, type));
        }
        Json last = old;
        commit(gr, key, last, &last, true);
        return Result<Json>(boost::system::in_place_value, Json());
    }

    Result<std::shared_ptr<Watch>> open_watch(const asio::any_io_executor& executor,
                                              std::uint64_t client, const ResourceType& type,
                                              std::string_view ns,
                                              const kube::WatchOptions& options) {
        if (find_served(type) == nullptr) {
            return no_such_resource();
        }
        auto labels = LabelSelector::parse(options.label_selector);
        if (!labels) {
            return labels.error();
        }
        auto fields = FieldSelector::parse(options.field_selector);
        if (!fields) {
            return fields.error();
        }
        auto watch = std::make_shared<Watch>(executor);
        watch->client = client;
        watch->type = type;
        watch->group_resource = group_resource(type);
        watch->ns = scope(type, ns);
        watch->labels = std::move(*labels);
        watch->fields = std::move(*fields);
        watch->bookmarks = options.allow_bookmarks;
        watch->metadata_only = options.metadata_only;
        const std::string& from = options.resource_version;
        if (from.empty() || from == "0") {
            // "Start at most recent" / "any": the current state as synthetic ADDED events.
            for (const auto& [key, object] : stored[watch->group_resource]) {
                if (watch->matches(object)) {
                    watch->initial.push_back(object);
                }
            }
            watch->next = history.size();
        } else {
            auto after = parse_version(from);
            if (!after) {
                return bad_request("invalid resourceVersion \"" + from + "\"");
            }
            if (*after < compacted) {
                return gone("too old resource version: " + from + " (" + std::to_string(compacted) +
                            ")");
            }
            watch->next =
                static_cast<std::size_t>(std::upper_bound(history.begin(), history.end(), *after,
                                                          [](std::uint64_t v, const Change& c) {
                                                              return v < c.resource_version;
                                                          }) -
                                         history.begin());
        }
        watches.push_back(watch);
        return watch;
    }

    Json watch_object(const Watch& watch, const Json& object) const {
        return watch.metadata_only ? metadata_only(object) : present(object, watch.type);
    }

    Json bookmark(const Watch& watch, std::uint64_t at) const {
        Json object = {{"metadata", {{"resourceVersion", std::to_string(at)}}}};
        if (watch.metadata_only) {
            object["apiVersion"] = "meta.k8s.io/v1";
            object["kind"] = "PartialObjectMetadata";
            return object;
        }
        return present(std::move(object), watch.type);
    }

    /// The next event `watch` should see, if there is one yet.
    std::optional<WatchEvent> next_event(Watch& watch) {
        if (!watch.initial.empty()) {
            WatchEvent event{WatchEvent::Type::kAdded, watch_object(watch, watch.initial.front())};
            watch.initial.pop_front();
            return event;
        }
        while (watch.next < history.size()) {
            const Change& change = history[watch.next++];
            if (change.kind == Change::Kind::kBookmark) {
                if (watch.bookmarks && (change.group_resource.empty() ||
                                        change.group_resource == watch.group_resource)) {
                    return WatchEvent{WatchEvent::Type::kBookmark,
                                      bookmark(watch, change.resource_version)};
                }
                continue;
            }
            if (change.group_resource != watch.group_resource) {
                continue;
            }
            const bool now_in =
                change.kind != Change::Kind::kDeleted && watch.matches(change.object);
            const bool was_in = !change.previous.is_null() && watch.matches(change.previous);
            if (change.kind == Change::Kind::kDeleted) {
                if (was_in) {
                    return WatchEvent{WatchEvent::Type::kDeleted,
                                      watch_object(watch, change.object)};
                }
            } else if (now_in && was_in) {
                return WatchEvent{WatchEvent::Type::kModified, watch_object(watch, change.object)};
            } else if (now_in) {
                return WatchEvent{WatchEvent::Type::kAdded, watch_object(watch, change.object)};
            } else if (was_in) {
                // Left the selection: a DELETED of the state it was selected in, at the
                // change's version (the watch cache's filtering).
                Json left = change.previous;
                metadata(left)["resourceVersion"] = std::to_string(change.resource_version);
                return WatchEvent{WatchEvent::Type::kDeleted, watch_object(watch, left)};
            }
        }
        return std::nullopt;
    }

    Result<std::string> raw(const std::string& path) const {
        if (path == "/readyz" || path == "/livez" || path == "/healthz") {
            return std::string("ok");
        }
        if (path == "/version") {
            return Json{{"major", "1"}, {"minor", "20"}, {"gitVersion", "v1.20.2"}}.dump();
        }
        for (const auto& [gr, s] : served) {
            for (const std::string& version : s.versions) {
                ResourceType type = s.type;
                type.version = version;
                if (type.group_version_path() != path) {
                    continue;
                }
                return discovery(type.api_version()).dump();
            }
        }
        return no_such_resource();
    }

    Json discovery(const std::string& group_version) const {
        Json resources = Json::array();
        for (const auto& [gr, s] : served) {
            for (const std::string& version : s.versions) {
                ResourceType type = s.type;
                type.version = version;
                if (type.api_version() != group_version) {
                    continue;
                }
                resources.push_back(
                    {{"name", type.resource},
                     {"namespaced", type.namespaced},
                     {"kind", type.kind},
                     {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}});
                if (s.traits.status_subresource) {
                    resources.push_back({{"name", type.resource + "/status"},
                                         {"namespaced", type.namespaced},
                                         {"kind", type.kind},
                                         {"verbs", {"get", "patch", "update"}}});
                }
            }
        }
        return Json{{"kind", "APIResourceList"},
                    {"apiVersion", "v1"},
                    {"groupVersion", group_version},
                    {"resources", std::move(resources)}};
    }
};

// ---- FakeApiServer
// --------------------------------------------------------------------------------

FakeApiServer::FakeApiServer(Clock& clock) : impl_(std::make_unique<Impl>(clock)) {
    namespace types = kube::types;
    for (const ResourceType* type :
         {&types::namespaces(), &types::pods(), &types::services(), &types::config_maps(),
          &types::secrets(), &types::events(), &types::service_accounts(), &types::deployments(),
          &types::daemon_sets(), &types::replica_sets(), &types::horizontal_pod_autoscalers(),
          &types::leases(), &types::custom_resource_definitions(), &types::cluster_roles(),
          &types::cluster_role_bindings(), &types::canaries(), &types::metric_templates(),
          &types::alert_providers()}) {
        serve(*type);
    }
}

FakeApiServer::~FakeApiServer() = default;

std::unique_ptr<FakeKubeClient> FakeApiServer::client() {
    return std::make_unique<FakeKubeClient>(*this);
}

void FakeApiServer::serve(const ResourceType& type, TypeTraits traits) {
    auto [it, added] = impl_->served.try_emplace(group_resource(type));
    if (added) {
        it->second.type = type;
        it->second.traits = traits;
    }
    it->second.versions.insert(type.version);
}

bool FakeApiServer::serves(const ResourceType& type) const {
    return impl_->find_served(type) != nullptr;
}

Result<Json> FakeApiServer::seed(const ResourceType& type, Json object) {
    return impl_->create(type, kube::object_namespace(object), std::move(object), false, true);
}

Result<Json> FakeApiServer::put(const ResourceType& type, Json object, bool upsert) {
    const Served* s = impl_->find_served(type);
    if (s == nullptr) {
        return no_such_resource();
    }
    const std::string ns = Impl::scope(type, kube::object_namespace(object));
    const std::string name = kube::object_name(object);
    const std::string gr = group_resource(type);
    const std::string key = storage_key(ns, name);
    auto& objects = impl_->stored[gr];
    auto it = objects.find(key);
    if (it == objects.end()) {
        if (!upsert) {
            return not_found(type, name);
        }
        // Stored as given: a resourceVersion it carries is replaced, not refused as a create
        // would refuse it.
        erase_member(metadata(object), "resourceVersion");
        return impl_->create(type, ns, std::move(object), false, true);
    }
    const Json old = it->second;
    for (const char* field : {"uid", "creationTimestamp", "generation", "deletionTimestamp"}) {
        if (meta_member(object, field) == nullptr) {
            Impl::copy_meta(old, object, field);
        }
    }
    object["apiVersion"] = s->type.api_version();
    object["kind"] = s->type.kind;
    metadata(object)["resourceVersion"] = kube::object_resource_version(old);
    if (object == old) {
        return Result<Json>(boost::system::in_place_value, Impl::present(old, type));
    }
    return Result<Json>(
        boost::system::in_place_value,
        Impl::present(impl_->commit(gr, key, std::move(object), &old, false), type));
}

Result<Json> FakeApiServer::set_status(const ResourceType& type, std::string_view ns,
                                       std::string_view name, Json status) {
    auto current = object(type, ns, name);
    if (!current) {
        return not_found(type, name);
    }
    (*current)["status"] = std::move(status);
    return put(type, std::move(*current));
}

Result<void> FakeApiServer::remove(const ResourceType& type, std::string_view ns,
                                   std::string_view name) {
    auto removed = impl_->remove(type, ns, std::string(name), kube::DeleteOptions(), false);
    if (!removed) {
        return removed.error();
    }
    return Result<void>{};
}

std::optional<Json> FakeApiServer::object(const ResourceType& type, std::string_view ns,
                                          std::string_view name) const {
    auto found = impl_->get(type, ns, name);
    if (!found) {
        return std::nullopt;
    }
    return std::move(*found);
}

std::vector<Json> FakeApiServer::objects(const ResourceType& type, std::string_view ns) const {
    std::vector<Json> out;
    auto it = impl_->stored.find(group_resource(type));
    if (it == impl_->stored.end()) {
        return out;
    }
    for (const auto& [key, object] : it->second) {
        if (ns.empty() || kube::object_namespace(object) == ns) {
            out.push_back(Impl::present(object, type));
        }
    }
    return out;
}

std::string FakeApiServer::resource_version() const { return std::to_string(impl_->revision); }

void FakeApiServer::compact() { impl_->compacted = impl_->revision; }

void FakeApiServer::send_bookmarks() {
    Change change;
    change.kind = Change::Kind::kBookmark;
    change.resource_version = impl_->revision;
    impl_->history.push_back(std::move(change));
    impl_->wake_watches();
}

void FakeApiServer::end_watches(std::optional<Error> error) {
    impl_->end_watches([](const Watch&) { return true; }, error);
}

std::size_t FakeApiServer::open_watches() const {
    std::size_t n = 0;
    for (const auto& weak : impl_->watches) {
        if (auto watch = weak.lock(); watch && !watch->finished) {
            ++n;
        }
    }
    return n;
}

void FakeApiServer::fail_next(CallMatcher match, int count, Error error, FaultTiming timing) {
    if (count > 0) {
        impl_->faults.push_back(Fault{std::move(match), count, std::move(error), timing});
    }
}

void FakeApiServer::fail_next(CallMatcher match, int count, ErrorKind kind, FaultTiming timing) {
    // The status code RestKubeClient would have read the kind from.
    static const std::map<ErrorKind, int> kStatus = {
        {ErrorKind::kTransient, 503},    {ErrorKind::kTooManyRequests, 429},
        {ErrorKind::kNotFound, 404},     {ErrorKind::kAlreadyExists, 409},
        {ErrorKind::kConflict, 409},     {ErrorKind::kGone, 410},
        {ErrorKind::kInvalid, 422},      {ErrorKind::kBadRequest, 400},
        {ErrorKind::kUnauthorized, 401}, {ErrorKind::kForbidden, 403},
    };
    auto status = kStatus.find(kind);
    Error error = api_error(kind, status == kStatus.end() ? 0 : status->second,
                            "injected by the test: " + std::string(serin::to_string(kind)));
    if (kind == ErrorKind::kTooManyRequests) {
        error.retry_after = std::chrono::seconds{1};
    }
    fail_next(std::move(match), count, std::move(error), timing);
}

int FakeApiServer::faults_pending() const {
    int n = 0;
    for (const Fault& fault : impl_->faults) {
        n += fault.remaining;
    }
    return n;
}

void FakeApiServer::clear_faults() { impl_->faults.clear(); }

const std::vector<WriteRecord>& FakeApiServer::writes() const { return impl_->writes; }

std::vector<std::string> FakeApiServer::write_log(bool applied_only) const {
    std::vector<std::string> out;
    for (const WriteRecord& record : impl_->writes) {
        if (!applied_only || record.applied) {
            out.push_back(record.describe());
        }
    }
    return out;
}

void FakeApiServer::clear_write_log() { impl_->writes.clear(); }

// ---- FakeKubeClient
// -------------------------------------------------------------------------------

namespace {

/// Ends a watch when the server's timeout passes, as kube-apiserver ends it after
/// timeoutSeconds.
asio::awaitable<void> expire(std::shared_ptr<Watch> watch, Clock& clock, SteadyTime deadline) {
    const bool reached = co_await clock.sleep_until(deadline);
    if (reached && !watch->finished) {
        watch->timed_out = true;
        watch->poke();
    }
}

/// The server's own watch timeout when the client asks for none (minRequestTimeout).
constexpr std::chrono::seconds kDefaultWatchTimeout{1800};

}  // namespace

FakeKubeClient::FakeKubeClient(FakeApiServer& server)
    : server_(server), id_(++server.impl_->clients) {}

FakeKubeClient::~FakeKubeClient() = default;

void FakeKubeClient::crash_after_writes(std::size_t k) {
    if (k == 0) {
        crashed_ = true;
        const std::uint64_t me = id_;
        server_.impl_->end_watches([me](const Watch& w) { return w.client == me; },
                                   fail(ErrorKind::kTransient, "the connection was reset"));
        return;
    }
    crash_at_ = writes_applied_ + k;
}

asio::awaitable<Result<void>> FakeKubeClient::enter(const Call& call) {
    // Suspend first, so a call never completes inside the caller's co_await: the real client
    // always waits for the network.
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    co_await asio::post(executor, asio::use_awaitable);
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
        co_return fail(ErrorKind::kCancelled, "cancelled");
    }
    if (crashed_) {
        co_return fail(ErrorKind::kTransient,
                       "connection refused: the process of this client has crashed");
    }
    if (auto fault = server_.impl_->take_fault(call, FaultTiming::kBeforeServer)) {
        if (call.is_write()) {
            server_.impl_->writes.push_back(WriteRecord{call, false, false, fault, {}});
        }
        co_return *fault;
    }
    co_return Result<void>{};
}

std::optional<Error> FakeKubeClient::after_server(const Call& call, bool dry_run, bool applied,
                                                  const Result<Json>& answer) {
    WriteRecord record{call, dry_run, applied, std::nullopt, {}};
    if (applied) {
        if (answer && answer->is_object()) {
            record.resource_version = kube::object_resource_version(*answer);
        }
        record.error = server_.impl_->take_fault(call, FaultTiming::kAfterServer);
    } else {
        record.error = answer.error();
    }
    server_.impl_->writes.push_back(record);
    if (applied && !dry_run) {
        ++writes_applied_;
        if (crash_at_ && writes_applied_ >= *crash_at_) {
            crash_after_writes(0);
        }
    }
    return applied ? record.error : std::nullopt;
}

Result<Json> FakeKubeClient::finish(const Call& call, bool dry_run, Result<Json> result) {
    if (auto lost = after_server(call, dry_run, result.has_value(), result)) {
        return *lost;
    }
    return result;
}

Result<void> FakeKubeClient::finish(const Call& call, bool dry_run, Result<void> result) {
    Result<Json> answer =
        result ? Result<Json>(boost::system::in_place_value, Json()) : Result<Json>(result.error());
    if (auto lost = after_server(call, dry_run, result.has_value(), answer)) {
        return *lost;
    }
    return result;
}

asio::awaitable<Result<Json>> FakeKubeClient::get(ResourceType type, std::string ns,
                                                  std::string name) {
    const Call call{Verb::kGet, type, ns, name, {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    co_return server_.impl_->get(type, ns, name);
}

asio::awaitable<Result<kube::ListPage>> FakeKubeClient::list(ResourceType type, std::string ns,
                                                             kube::ListOptions options) {
    const Call call{Verb::kList, type, ns, {}, {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    co_return server_.impl_->list(type, ns, options);
}

asio::awaitable<Result<Json>> FakeKubeClient::create(ResourceType type, std::string ns, Json object,
                                                     kube::WriteOptions options) {
    const Call call{Verb::kCreate,
                    type,
                    ns.empty() ? kube::object_namespace(object) : ns,
                    kube::object_name(object),
                    {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    auto result = server_.impl_->create(type, ns, std::move(object), options.dry_run, false);
    co_return finish(call, options.dry_run, std::move(result));
}

asio::awaitable<Result<Json>> FakeKubeClient::update(ResourceType type, std::string ns, Json object,
                                                     kube::WriteOptions options) {
    const Call call{Verb::kUpdate, type, ns.empty() ? kube::object_namespace(object) : ns,
                    kube::object_name(object), options.subresource};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    auto result = server_.impl_->update(type, ns, std::move(object), options);
    co_return finish(call, options.dry_run, std::move(result));
}

asio::awaitable<Result<Json>> FakeKubeClient::patch(ResourceType type, std::string ns,
                                                    std::string name, kube::PatchType patch_type,
                                                    std::string body, kube::WriteOptions options) {
    const Call call{Verb::kPatch, type, ns, name, options.subresource};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    auto result = server_.impl_->patch(type, ns, name, patch_type, body, options);
    co_return finish(call, options.dry_run, std::move(result));
}

asio::awaitable<Result<void>> FakeKubeClient::remove(ResourceType type, std::string ns,
                                                     std::string name,
                                                     kube::DeleteOptions options) {
    const Call call{Verb::kDelete, type, ns, name, {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    auto removed = server_.impl_->remove(type, ns, name, options, false);
    co_return finish(call, false, removed ? Result<void>{} : Result<void>(removed.error()));
}

asio::awaitable<Result<void>> FakeKubeClient::watch(ResourceType type, std::string ns,
                                                    kube::WatchOptions options,
                                                    kube::WatchHandler handler) {
    const Call call{Verb::kWatch, type, ns, {}, {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    auto opened = server_.impl_->open_watch(executor, id_, type, ns, options);
    if (!opened) {
        co_return opened.error();
    }
    const std::shared_ptr<Watch> watch = std::move(*opened);
    Clock& clock = server_.impl_->clock;
    const std::chrono::seconds timeout = options.timeout_seconds > 0
                                             ? std::chrono::seconds{options.timeout_seconds}
                                             : kDefaultWatchTimeout;
    asio::co_spawn(executor, expire(watch, clock, clock.steady_now() + timeout),
                   asio::bind_cancellation_slot(watch->stop_timeout.slot(), asio::detached));
    // Not done in a destructor: a frame destroyed with its io_context must not touch the
    // timeout's coroutine, which is being destroyed too.
    auto finish_watch = [&watch](Result<void> result) {
        watch->finished = true;
        watch->stop_timeout.emit(asio::cancellation_type::terminal);
        return result;
    };
    while (true) {
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            co_return finish_watch(fail(ErrorKind::kCancelled, "watch cancelled"));
        }
        if (watch->ended) {
            co_return finish_watch(watch->end_error ? Result<void>(*watch->end_error)
                                                    : Result<void>{});
        }
        // Everything that happened since the last wake-up, in order; the handler runs here, in
        // the watch's coroutine, never inside the write that caused the event.
        while (auto event = server_.impl_->next_event(*watch)) {
            if (!handler(std::move(*event))) {
                co_return finish_watch(Result<void>{});
            }
            if (watch->ended) {
                break;
            }
        }
        if (watch->ended) {
            continue;
        }
        if (watch->timed_out) {
            // The watch cache sends a bookmark just before a watch's deadline, so the next
            // watch starts from where this one got to.
            if (watch->bookmarks) {
                const std::uint64_t at = server_.impl_->revision;
                handler(
                    WatchEvent{WatchEvent::Type::kBookmark, server_.impl_->bookmark(*watch, at)});
            }
            co_return finish_watch(Result<void>{});
        }
        auto [ec] = co_await watch->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;  // a wake-up or a cancellation, told apart at the top of the loop
    }
}

asio::awaitable<Result<std::string>> FakeKubeClient::get_raw(std::string path) {
    const Call call{Verb::kGetRaw, {}, {}, path, {}};
    auto entered = co_await enter(call);
    if (!entered) {
        co_return entered.error();
    }
    co_return server_.impl_->raw(path);
}

}  // namespace serin::testing
