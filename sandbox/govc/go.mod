// Wrapper module: builds govc for the simulator's conformance suite
// (tests/integration/vsphere/conformance). govmomi publishes govc's own main package as a nested
// module that the module proxy does not serve, but its commands are packages of the govmomi
// module (cli/...); main.go registers the ones the suite runs. The govmomi version must equal
// sandbox/vcsim/go.mod's: dpio_sandbox.govc checks that before it builds.
module dpio.io/sandbox/govc

go 1.25.0

require github.com/vmware/govmomi v0.56.0

require (
	github.com/a8m/tree v0.0.0-20240104212747-2c8764a5f17e // indirect
	github.com/dougm/pretty v0.0.0-20160325215624-add1dbc86daf // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
)
