// Package k8s holds the Kubernetes manifests (base/ and overlays/, rendered
// with kustomize) and their tests: the manifests render, decode strictly
// into the Kubernetes and Prometheus Operator API types, pass only flags and
// variables the binary has, probe real endpoints, and carry the alert rules
// of deploy/prometheus/alerts.yml unchanged. See deploy/README.md.
package k8s
