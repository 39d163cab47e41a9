//go:build tools

// The test bed's Kubernetes API server and its etcd: built from the Go module proxy, pinned by go.mod/go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
