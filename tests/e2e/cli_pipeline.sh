#!/bin/sh
# A delivery pipeline's last stage, as a CI job writes it: the image was bumped, now wait for
# Serin's verdict on the release and pass it on. kubectl-serin is on PATH and KUBECONFIG is set,
# as in a CI runner. Usage: cli_pipeline.sh NAMESPACE CANARY TIMEOUT
set -u
ns=$1 canary=$2 timeout=$3
kubectl-serin -n "$ns" status "$canary" --watch --timeout "$timeout"
code=$?
case $code in
  0) echo "pipeline: $canary promoted" ;;
  1) echo "pipeline: $canary failed and was rolled back" ;;
  2) echo "pipeline: no verdict on $canary within $timeout" ;;
  *) echo "pipeline: kubectl-serin error $code" ;;
esac
exit $code
