// Package discovery turns a client target into the endpoints behind it.
//
// A target is one of
//
//	host:port                      one server
//	host:port,host:port,...        a fixed list
//	dns:///name:port               every A/AAAA record of name, re-resolved
//	etcd://host:port,.../SERVICE   the servers rpcd registered in etcd
//
// A Resolver delivers the whole list each time it changes. Its contract, which
// the client relies on: not reaching the registry never changes the list (the
// last one known stays in use), and only a registry that answers that there is
// nothing under the name delivers an empty list.
//
// The static and dns schemes are built in. Other schemes register a Builder
// with Register, usually from an init function of their own package, so that
// a program links a registry's client only if it imports it: the etcd scheme
// lives in discovery/etcd.
package discovery
