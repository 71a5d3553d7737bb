// Package registry registers an rpcd host in etcd, for clients that find
// their servers with an etcd:// target (package discovery/etcd).
//
// A host is one key, PREFIX/SERVICE/ADDRESS, under a lease of its own, whose
// value is a JSON Record. A Registrar keeps that key in place for as long as
// the host serves:
//
//   - it writes the key once Start is called, and again, under the same
//     lease, on each Update: a watcher sees a put, never a delete;
//   - it renews the lease a third of the TTL apart; a failed renewal is
//     retried with a jittered backoff, and a lease that has expired
//     meanwhile is replaced by a new one under which the key is written
//     again;
//   - it watches its own key and writes it back when someone else deletes
//     it;
//   - Deregister revokes the lease, which deletes the key at once.
//
// An unreachable etcd is logged and retried; it never stops the host. The
// lease may be handed to another process (Config.Lease), which then keeps
// it alive in turn: an rpcd upgrade keeps its registration that way.
//
// Requests go to etcd's v3 JSON gateway over net/http (internal/etcdv3), so
// the server links no gRPC.
package registry
