// Must NOT compile (with -Werror=unused-result): a Result dropped on the floor. ctest builds it
// and expects the build to fail, so removing [[nodiscard]] from serin::Result fails a test.
#include "platform/core/result.hpp"

serin::Result<void> may_fail();

void caller() { may_fail(); }
