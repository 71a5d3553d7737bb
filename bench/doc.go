// Package bench is the home of the comparison servers that rpcd is measured
// against. It is a module of its own so that their dependencies stay out of
// rpcd's go.mod. The servers are commands in subdirectories (goserver), and
// compare.sh drives them and rpcd with cmd/rpcbench from the main module:
//
//	bench/compare.sh            # DURATION, REPEAT, SERVERS, ... see the script
package bench
