#pragma once

#include <string_view>

/// The phases of a Canary's status as Flagger names them (flagger-spec §2.12). Internal to
/// serin_analysis.
namespace serin::analysis::phase {

inline constexpr std::string_view kInitializing = "Initializing";
inline constexpr std::string_view kInitialized = "Initialized";
inline constexpr std::string_view kWaiting = "Waiting";
inline constexpr std::string_view kProgressing = "Progressing";
inline constexpr std::string_view kWaitingPromotion = "WaitingPromotion";
inline constexpr std::string_view kPromoting = "Promoting";
inline constexpr std::string_view kFinalising = "Finalising";
inline constexpr std::string_view kSucceeded = "Succeeded";
inline constexpr std::string_view kFailed = "Failed";

}  // namespace serin::analysis::phase
