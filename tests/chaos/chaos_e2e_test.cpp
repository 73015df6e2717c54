// The chaos campaign's short seeded run (hack/chaos runs longer ones with the same binary): a
// private devcluster, two serins with leader election, releases healthy and failing, and a
// seeded schedule of faults. It asserts the invariants, which hold for any timing; which faults
// land where depends on timing, the schedule's kinds and order do not.
#include <catch2/catch.hpp>

#include <iostream>

#include "tests/chaos/campaign.hpp"

TEST_CASE("chaos: releases under a seeded schedule of faults keep every invariant") {
    const serin::chaos::CampaignOptions options = serin::chaos::options_from_environment();
    const serin::chaos::CampaignReport report = serin::chaos::run_campaign(options);
    std::cout << report.table() << std::flush;
    INFO(report.table());
    CHECK(report.stopped_early.empty());
    CHECK(report.releases_ended == report.releases_started);
    CHECK(report.releases_started >= std::min(options.releases, options.canaries));
    CHECK(report.failures() == 0);
}
