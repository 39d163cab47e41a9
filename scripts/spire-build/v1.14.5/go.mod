module trustroot.ops/spire-build

go 1.26.6

require github.com/spiffe/spire v1.14.5

replace github.com/Keyfactor/ejbca-go-client-sdk => github.com/Keyfactor/ejbca-go-client-sdk v1.0.2
