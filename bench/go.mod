module github.com/rpcd/rpcd/bench

go 1.26.8
