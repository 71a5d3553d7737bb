//go:build linux

package cmd

import (
	"io"
	"strings"
	"testing"
)

func TestRegistryFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // a substring; empty for none
	}{
		{name: "no registry", args: []string{"-listen=0.0.0.0:8080"}},
		{name: "listen advertised", args: []string{"-listen=10.0.0.2:8080", "-registry=etcd://127.0.0.1:2379"}},
		{name: "port 0 stands for the bound port", args: []string{"-listen=10.0.0.2:0", "-registry=etcd://a:1,b:2"}},
		{name: "wildcard needs advertise", args: []string{"-listen=0.0.0.0:8080", "-registry=etcd://127.0.0.1:2379"}, wantErr: "-advertise"},
		{name: "empty host needs advertise", args: []string{"-listen=:8080", "-registry=etcd://127.0.0.1:2379"}, wantErr: "-advertise"},
		{name: "advertise given", args: []string{"-listen=[::]:8080", "-advertise=rpcd-1.example:8080", "-registry=etcd://127.0.0.1:2379"}},
		{name: "advertise a wildcard", args: []string{"-listen=:8080", "-advertise=0.0.0.0:8080", "-registry=etcd://e:1"}, wantErr: "wildcard"},
		{name: "advertise port 0", args: []string{"-advertise=h:0", "-registry=etcd://e:1"}, wantErr: "port"},
		{name: "not etcd", args: []string{"-registry=consul://e:1"}, wantErr: "etcd://"},
		{name: "no port", args: []string{"-registry=etcd://e"}, wantErr: "host:port"},
		{name: "service with a slash", args: []string{"-registry=etcd://e:1", "-service=a/b"}, wantErr: "-service"},
		{name: "relative prefix", args: []string{"-registry=etcd://e:1", "-registry-prefix=rpcd"}, wantErr: "-registry-prefix"},
		{name: "ttl too short", args: []string{"-registry=etcd://e:1", "-registry-ttl=1s"}, wantErr: "-registry-ttl"},
		{name: "ttl not whole seconds", args: []string{"-registry=etcd://e:1", "-registry-ttl=2500ms"}, wantErr: "-registry-ttl"},
		{name: "delay past half the shutdown timeout", args: []string{"-registry=etcd://e:1", "-shutdown-timeout=4s", "-deregister-delay=3s"}, wantErr: "-deregister-delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSettings(tt.args, nil, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			err = s.check()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("check: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("check: %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}
