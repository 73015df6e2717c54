// The CanaryRequest codec (crds/api/canary_request) and the runtime-control fields of the
// Canary status: field-path errors, bounds, round trips.
#include "crds/api/canary.hpp"
#include "crds/api/canary_request.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace {

namespace api = serin::api;
using Json = nlohmann::json;

Json request_json() {
    return Json{{"apiVersion", "serin.dev/v1alpha1"},
                {"kind", "CanaryRequest"},
                {"metadata",
                 {{"name", "podinfo-promote-abcde"},
                  {"namespace", "test"},
                  {"uid", "6f1c"},
                  {"creationTimestamp", "2026-12-05T20:01:00Z"}}},
                {"spec",
                 {{"canaryRef", {{"name", "podinfo"}}},
                  {"action", "promote"},
                  {"full", true},
                  {"requestedBy", "alice"},
                  {"reason", "hotfix verified by hand"}}}};
}

}  // namespace

TEST_CASE("CanaryRequest decodes its spec and metadata") {
    auto r = api::decode_canary_request(request_json());
    REQUIRE(r.has_value());
    CHECK(r->metadata.name == "podinfo-promote-abcde");
    CHECK(r->metadata.uid == "6f1c");
    CHECK(r->creation_timestamp == "2026-12-05T20:01:00Z");
    CHECK(r->spec.canary == "podinfo");
    CHECK(r->spec.action == api::RequestAction::kPromote);
    CHECK(r->spec.full);
    CHECK(r->spec.requested_by == "alice");
    CHECK(r->spec.reason == "hotfix verified by hand");
    CHECK(r->status.phase.empty());
}

TEST_CASE("CanaryRequest errors name the field path") {
    Json j = request_json();
    SECTION("unknown action") {
        j["spec"]["action"] = "rewind";
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.rfind("spec.action: ", 0) == 0);
    }
    SECTION("missing canaryRef") {
        j["spec"].erase("canaryRef");
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message == "spec.canaryRef: is required");
    }
    SECTION("missing action") {
        j["spec"].erase("action");
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message == "spec.action: is required");
    }
    SECTION("full of the wrong type") {
        j["spec"]["full"] = "yes";
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.rfind("spec.full: expected a boolean", 0) == 0);
    }
    SECTION("requestedBy over its bound") {
        j["spec"]["requestedBy"] = std::string(257, 'a');
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message == "spec.requestedBy: longer than 256 bytes (257)");
    }
    SECTION("reason not valid UTF-8") {
        Json k = request_json();
        k["spec"]["reason"] = std::string("caf\xc3", 4);
        auto bad = api::decode_canary_request(k);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().message == "spec.reason: not valid UTF-8");
    }
    SECTION("unknown status phase") {
        j["status"] = {{"phase", "Maybe"}};
        auto r = api::decode_canary_request(j);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.rfind("status.phase: ", 0) == 0);
    }
}

TEST_CASE("CanaryRequest status encodes the fields the doc names") {
    api::CanaryRequestStatus s{"Done", "Promotion requested by alice: ...", "2026-12-05T20:01:02Z",
                               "s1:abc"};
    CHECK(api::encode_request_status(s) == Json{{"phase", "Done"},
                                                {"message", "Promotion requested by alice: ..."},
                                                {"handledTime", "2026-12-05T20:01:02Z"},
                                                {"revision", "s1:abc"}});
}

TEST_CASE("requests are ordered by creationTimestamp, then name") {
    api::CanaryRequest a;
    a.creation_timestamp = "2026-12-05T20:01:00Z";
    a.metadata.name = "b";
    api::CanaryRequest b = a;
    b.metadata.name = "a";
    api::CanaryRequest c = a;
    c.creation_timestamp = "2026-12-05T20:00:59Z";
    c.metadata.name = "z";
    CHECK(api::handled_before(b, a));
    CHECK(api::handled_before(c, b));
    CHECK_FALSE(api::handled_before(a, a));
}

TEST_CASE("Canary status: paused, promotion and requests round-trip, the newest 10 kept") {
    api::CanaryStatus s;
    s.phase = "Progressing";
    s.paused = api::PausedStatus{"2026-12-05T20:01:02Z", "podinfo-pause-x7k2p"};
    s.promotion = api::RequestedPromotion{"podinfo-promote-a", true};
    for (int i = 0; i < 10; ++i) {
        api::HandledRequest h;
        h.name = "r" + std::to_string(i);
        h.uid = "u" + std::to_string(i);
        h.action = "pause";
        h.requested_by = "alice";
        h.result = "Refused";
        h.message = "m";
        h.time = "2026-12-05T20:01:02Z";
        s.requests.push_back(h);
    }
    Json encoded = api::encode_status(s);
    CHECK(encoded["paused"] == Json{{"since", "2026-12-05T20:01:02Z"},
                                    {"request", "podinfo-pause-x7k2p"}});
    CHECK(encoded["requests"][0] == Json{{"name", "r0"},
                                         {"uid", "u0"},
                                         {"action", "pause"},
                                         {"full", false},
                                         {"requestedBy", "alice"},
                                         {"result", "Refused"},
                                         {"message", "m"},
                                         {"time", "2026-12-05T20:01:02Z"}});
    auto decoded = api::decode_status(encoded);
    REQUIRE(decoded.has_value());
    CHECK(api::encode_status(*decoded) == encoded);

    // More than 10 (written by someone else): the newest 10 are read.
    encoded["requests"].push_back(encoded["requests"][0]);
    encoded["requests"].back()["uid"] = "u10";
    auto trimmed = api::decode_status(encoded);
    REQUIRE(trimmed.has_value());
    REQUIRE(trimmed->requests.size() == 10);
    CHECK(trimmed->requests.front().uid == "u1");
    CHECK(trimmed->requests.back().uid == "u10");

    encoded["requests"][3] = "not an object";
    auto bad = api::decode_status(encoded);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.rfind("status.requests[3]: expected an object", 0) == 0);
}
