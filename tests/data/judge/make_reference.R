#!/usr/bin/env Rscript
# Reference values for Serin's Mann-Whitney port (analysis/mann_whitney.cpp), taken from R's
#
#     wilcox.test(x, y, conf.int = TRUE, conf.level = L, exact = FALSE, correct = TRUE)
#
# (two-sample, two-sided). tests/unit/mann_whitney_test.cpp reads the output and checks Serin's
# estimate and interval against it.
#
# Rerun from the repository root after changing the cases:
#
#     Rscript tests/data/judge/make_reference.R > tests/data/judge/reference.json
#     Rscript tests/data/judge/make_reference.R tests/data/judge/reference.json
#
# Only base R is used (no jsonlite): the JSON is written with sprintf/paste. Samples are written
# with 17 significant digits so that the C++ side reads back exactly the doubles R used. Every case
# draws from its own set.seed(), so adding or reordering cases does not change the others.

args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) >= 1) args[[1]] else ""

num <- function(v) {
    if (!is.finite(v)) stop("non-finite value in the reference output")
    sprintf("%.17g", v)
}
num_array <- function(v) paste0("[", paste(vapply(v, num, ""), collapse = ", "), "]")
str <- function(s) paste0("\"", gsub("\"", "\\\\\"", s), "\"")

cases <- list()
add_case <- function(name, seed, make, conf_level = 0.98) {
    set.seed(seed)
    xy <- make()
    cases[[length(cases) + 1]] <<- list(name = name, x = xy$x, y = xy$y, conf_level = conf_level)
}

# x = experiment (canary), y = control (primary), as in the judge.
add_case("shifted_normal_n10", 101, function() list(x = rnorm(10, 1), y = rnorm(10)))
add_case("shifted_normal_n30", 102, function() list(x = rnorm(30, 0.5), y = rnorm(30)))
add_case("shifted_normal_n30_conf95", 102, function() list(x = rnorm(30, 0.5), y = rnorm(30)),
         conf_level = 0.95)
add_case("equal_samples", 103, function() { v <- rnorm(20, 10); list(x = v, y = v) })
add_case("same_distribution_n40", 104, function() list(x = rnorm(40, 5), y = rnorm(40, 5)))
add_case("heavy_ties_1_to_3", 105,
         function() list(x = sample(1:3, 20, replace = TRUE), y = sample(1:3, 25, replace = TRUE)))
add_case("integer_poisson_counts", 106, function() list(x = rpois(40, 5), y = rpois(40, 6)))
add_case("integer_poisson_counts_conf95", 106,
         function() list(x = rpois(40, 5), y = rpois(40, 6)), conf_level = 0.95)
add_case("small_3_vs_4", 107, function() list(x = rnorm(3, 2), y = rnorm(4)))
add_case("small_2_vs_2", 108, function() list(x = c(1.5, 2.5), y = c(0.25, 1.75)))
add_case("latency_ms_60_vs_60", 109,
         function() list(x = rlnorm(60, log(120), 0.25), y = rlnorm(60, log(120), 0.25)))
add_case("latency_ms_60_vs_60_increase_30pct", 110, function() {
    y <- rlnorm(60, log(120), 0.25)
    list(x = 1.3 * rlnorm(60, log(120), 0.25), y = y)
})
add_case("latency_seconds_60_vs_60", 111,
         function() list(x = rlnorm(60, log(0.012), 0.3), y = rlnorm(60, log(0.010), 0.3)))
add_case("one_side_constant", 112, function() list(x = rep(5, 12), y = rnorm(15, 5)))
add_case("exponential_skewed", 113, function() list(x = rexp(50, 1 / 100), y = rexp(50, 1 / 120)))
add_case("negative_values", 114, function() list(x = rnorm(20, -5), y = rnorm(25, -4)))
add_case("different_sizes_15_vs_50", 115, function() list(x = rnorm(15, 3, 2), y = rnorm(50, 2, 2)))
add_case("different_sizes_80_vs_7", 116, function() list(x = rgamma(80, 2, 1), y = rgamma(7, 2, 1)))
add_case("single_vs_many_clamped", 117, function() list(x = 1, y = 2:60))
add_case("fully_separated", 118, function() list(x = 100 + runif(10), y = runif(10)))
add_case("zero_inflated_errors", 119, function() {
    list(x = ifelse(runif(50) < 0.7, 0, rpois(50, 3)), y = ifelse(runif(50) < 0.8, 0, rpois(50, 2)))
})
add_case("rounded_continuous_ties", 120,
         function() list(x = round(rnorm(45, 20.3, 2), 1), y = round(rnorm(45, 20, 2), 1)))
add_case("large_scale_values", 121, function() list(x = rnorm(30, 2.0e6, 5.0e4),
                                                    y = rnorm(30, 1.98e6, 5.0e4)))
add_case("n200_vs_200_conf95", 122,
         function() list(x = rnorm(200, 0.1), y = rnorm(200)), conf_level = 0.95)
add_case("two_point_distribution", 123,
         function() list(x = sample(c(0, 1), 30, replace = TRUE),
                         y = sample(c(0, 1), 30, replace = TRUE, prob = c(0.7, 0.3))))
add_case("odd_product_5_vs_7", 124, function() list(x = rexp(5), y = rexp(7)))

json_cases <- character(0)
for (case in cases) {
    warnings_seen <- character(0)
    test <- withCallingHandlers(
        wilcox.test(case$x, case$y, conf.int = TRUE, conf.level = case$conf_level,
                    exact = FALSE, correct = TRUE),
        warning = function(w) {
            warnings_seen <<- c(warnings_seen, conditionMessage(w))
            invokeRestart("muffleWarning")
        })
    fields <- c(
        paste0("\"name\": ", str(case$name)),
        paste0("\"conf_level\": ", num(case$conf_level)),
        paste0("\"x\": ", num_array(case$x)),
        paste0("\"y\": ", num_array(case$y)),
        paste0("\"estimate\": ", num(unname(test$estimate))),
        paste0("\"lower\": ", num(test$conf.int[[1]])),
        paste0("\"upper\": ", num(test$conf.int[[2]])),
        paste0("\"r_warnings\": [", paste(vapply(warnings_seen, str, ""), collapse = ", "), "]"))
    json_cases <- c(json_cases, paste0("    {\n      ", paste(fields, collapse = ",\n      "),
                                       "\n    }"))
}

json <- paste0(
    "{\n",
    "  \"generator\": \"tests/data/judge/make_reference.R\",\n",
    "  \"r_version\": ", str(R.version.string), ",\n",
    "  \"call\": \"wilcox.test(x, y, conf.int = TRUE, conf.level = conf_level, ",
    "exact = FALSE, correct = TRUE)\",\n",
    "  \"cases\": [\n", paste(json_cases, collapse = ",\n"), "\n  ]\n}\n")

if (nzchar(out_path)) {
    writeLines(json, out_path, sep = "")
} else {
    cat(json)
}
