// kubectl-serin: the `kubectl serin` plugin (docs/runtime-control.md). A thin main; the verbs
// are in cli/verbs.cpp.
#include <iostream>

#include "cli/verbs.hpp"

int main(int argc, char** argv) {
    return serin::cli::run_command_line(argc, argv, std::cout, std::cerr);
}
