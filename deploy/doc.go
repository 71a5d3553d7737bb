// Package deploy holds what runs rpcd outside a terminal: the container image
// (Dockerfile, built offline by build.sh; Dockerfile.multistage builds it from
// source), Compose files, Kubernetes manifests and a systemd unit.
//
// Each turns the master's metrics endpoint (/metrics, /readyz, /livez) on.
//
// Its tests check those files against the rpcd binary's own flags, the
// Kubernetes probes and scrape targets against the ports the flags set, and
// run the image on a real Docker engine: serving published ports on
// 127.0.0.1, /metrics and /readyz on the published metrics port, graceful
// docker stop under load, reload on SIGHUP, a killed worker healed, the
// health check following another -listen, the CPU quota setting the worker
// count, and Compose replicas. The container tests skip when no Docker
// engine answers.
package deploy
