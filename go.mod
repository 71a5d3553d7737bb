module github.com/rpcd/rpcd

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.1.2
	github.com/kavu/go_reuseport v1.5.0
	go.uber.org/zap v1.28.0
	go.yaml.in/yaml/v3 v3.0.4
	golang.org/x/sys v0.42.0
)

require go.uber.org/multierr v1.10.0 // indirect
