#pragma once

#include "platform/kube/kube_client.hpp"

/// Which watch events are worth a canary's reconcile (docs/benchmarks.md, "At rest"). Pure: they
/// compare objects as the informers hold them.
namespace serin::canary {

/// Whether an update of a Deployment or DaemonSet changed more than its status: its spec
/// (template, replicas, selector, ...) or the metadata Serin reads (generation, labels,
/// annotations, ownerReferences, finalizers, deletionTimestamp). A resourceVersion or
/// managedFields change alone is not one.
bool workload_changed_beyond_status(const kube::Json& before, const kube::Json& after);

/// Whether an update of a Deployment or DaemonSet changed its pod template: for the canaries
/// that target it, a new revision to release (their reconcile goes ahead of other work).
bool workload_template_changed(const kube::Json& before, const kube::Json& after);

/// Whether a canary reads its workloads' status in its current phase: while it initializes,
/// releases, promotes or is deleted. At rest (Initialized, Succeeded, Failed) only a change of
/// the workloads' spec or metadata (a new revision, drift of the primary) concerns it, so the
/// controller-manager's status updates need not wake it.
bool reads_workload_status(const kube::Json& canary);

}  // namespace serin::canary
