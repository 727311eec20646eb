package sim

import (
	"fmt"
	"net"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// hostNetwork rebuilds config.network from the inventory's physical NICs and vmkernel NICs.
// A vmkernel NIC sits on a port group of a standard vSwitch whose uplink is a physical NIC;
// following vnic -> portgroup -> vswitch -> pnic -> pci is how a client learns that a PCI
// function is in use by ESXi and must not be handed to a VM silently (docs/design.md,
// "Host side: passthrough rules").
// Without NICs in the inventory the upstream template network is kept.
func hostNetwork(tmpl *types.HostNetworkInfo, spec *Host) *types.HostNetworkInfo {
	n := *tmpl
	if len(spec.NICs) == 0 {
		return &n
	}
	pnicTmpl := tmpl.Pnic[0]
	vswitchTmpl := tmpl.Vswitch[0]
	pgTmpl := tmpl.Portgroup[0]
	vnicTmpl := tmpl.Vnic[0]

	n.Pnic = nil
	for i, p := range spec.NICs {
		nic := pnicTmpl
		nic.Key = "key-vim.host.PhysicalNic-" + p.Device
		nic.Device = p.Device
		nic.Pci = p.PCI
		nic.Mac = fmt.Sprintf("00:50:56:%02x:%02x:%02x", len(spec.Name)&0xff, hashByte(spec.Name), i)
		n.Pnic = append(n.Pnic, nic)
	}

	// vSwitch0 always exists and carries "VM Network", which the VMs' default NICs use.
	type vswitch struct {
		pnics, portgroups []string
	}
	switches := map[string]*vswitch{"vSwitch0": {}}
	order := []string{"vSwitch0"}
	n.Portgroup = []types.HostPortGroup{portgroup(pgTmpl, "VM Network", "vSwitch0")}
	switches["vSwitch0"].portgroups = []string{"key-vim.host.PortGroup-VM Network"}
	n.Vnic = nil
	for _, v := range spec.VMKernelNICs {
		vsName := orDefault(v.VSwitch, "vSwitch0")
		pgName := orDefault(v.Portgroup, "Management Network")
		vs := switches[vsName]
		if vs == nil {
			vs = &vswitch{}
			switches[vsName] = vs
			order = append(order, vsName)
		}
		if !contains(vs.pnics, v.PNIC) {
			vs.pnics = append(vs.pnics, v.PNIC)
		}
		pgKey := "key-vim.host.PortGroup-" + pgName
		if !contains(vs.portgroups, pgKey) {
			vs.portgroups = append(vs.portgroups, pgKey)
			n.Portgroup = append(n.Portgroup, portgroup(pgTmpl, pgName, vsName))
		}
		vnic := vnicTmpl
		vnic.Device = v.Device
		vnic.Key = "key-vim.host.VirtualNic-" + v.Device
		vnic.Portgroup = pgName
		vnic.Spec.Portgroup = pgName
		vnic.Spec.Mac = fmt.Sprintf("00:50:56:6%x:%02x:%02x", len(n.Vnic)&0xf, hashByte(spec.Name), len(spec.NICs)+len(n.Vnic))
		vnic.Port = fmt.Sprintf("key-vim.host.PortGroup.Port-%d", 33554436+len(n.Vnic))
		ip := *vnicTmpl.Spec.Ip
		ip.Dhcp = v.IP == ""
		ip.IpAddress = orDefault(v.IP, "127.0.0.1")
		if v.IP != "" {
			ip.SubnetMask = "255.255.255.0"
		}
		vnic.Spec.Ip = &ip
		n.Vnic = append(n.Vnic, vnic)
	}

	n.Vswitch = nil
	for _, name := range order {
		vs := switches[name]
		sw := vswitchTmpl
		sw.Name = name
		sw.Key = "key-vim.host.VirtualSwitch-" + name
		sw.Portgroup = vs.portgroups
		sw.Pnic = nil
		for _, p := range vs.pnics {
			sw.Pnic = append(sw.Pnic, "key-vim.host.PhysicalNic-"+p)
		}
		sw.Spec = vswitchSpec(vswitchTmpl.Spec, vs.pnics)
		n.Vswitch = append(n.Vswitch, sw)
	}

	// DNS and the default route as the host's own: its name, and the gateway of the first
	// vmkernel NIC's /24 (the template says localhost and 127.0.0.1).
	if d, ok := tmpl.DnsConfig.(*types.HostDnsConfig); ok {
		dns := *d
		host, domain, _ := strings.Cut(spec.Name, ".")
		dns.HostName, dns.DomainName = host, orDefault(domain, dns.DomainName)
		dns.SearchDomain = []string{dns.DomainName}
		if len(n.Vnic) > 0 {
			dns.VirtualNicDevice = n.Vnic[0].Device
		}
		n.DnsConfig = &dns
	}
	if r, ok := tmpl.IpRouteConfig.(*types.HostIpRouteConfig); ok {
		route := *r
		for _, v := range spec.VMKernelNICs {
			if ip := net.ParseIP(v.IP).To4(); ip != nil {
				route.DefaultGateway = fmt.Sprintf("%d.%d.%d.1", ip[0], ip[1], ip[2])
				route.GatewayDevice = v.Device
				break
			}
		}
		n.IpRouteConfig = &route
	}
	return &n
}

// vswitchSpec is a standard vSwitch's spec with its own uplinks: the bond bridge and the
// teaming's active NICs name them (the template's name vmnic0 on every switch, and its pointers
// are shared by every host), MTU 1500. A switch without uplinks has no bridge.
func vswitchSpec(tmpl types.HostVirtualSwitchSpec, pnics []string) types.HostVirtualSwitchSpec {
	spec := tmpl
	spec.Mtu = 1500
	spec.Bridge = nil
	if b, ok := tmpl.Bridge.(*types.HostVirtualSwitchBondBridge); ok && len(pnics) > 0 {
		bridge := *b
		bridge.NicDevice = append([]string(nil), pnics...)
		spec.Bridge = &bridge
	}
	if tmpl.Policy != nil {
		policy := *tmpl.Policy
		if tmpl.Policy.NicTeaming != nil {
			teaming := *tmpl.Policy.NicTeaming
			teaming.NicOrder = &types.HostNicOrderPolicy{ActiveNic: append([]string(nil), pnics...)}
			policy.NicTeaming = &teaming
		}
		spec.Policy = &policy
	}
	return spec
}

// networkConfig is HostNetworkSystem.networkConfig for a network: the configuration that
// produces it (HostNetworkConfig), as ESXi reports it.
func networkConfig(n *types.HostNetworkInfo) *types.HostNetworkConfig {
	c := &types.HostNetworkConfig{DnsConfig: n.DnsConfig, IpRouteConfig: n.IpRouteConfig, IpV6Enabled: n.IpV6Enabled}
	for i := range n.Vswitch {
		spec := n.Vswitch[i].Spec
		c.Vswitch = append(c.Vswitch, types.HostVirtualSwitchConfig{Name: n.Vswitch[i].Name, Spec: &spec})
	}
	for i := range n.Portgroup {
		spec := n.Portgroup[i].Spec
		c.Portgroup = append(c.Portgroup, types.HostPortGroupConfig{Spec: &spec})
	}
	for _, p := range n.Pnic {
		c.Pnic = append(c.Pnic, types.PhysicalNicConfig{Device: p.Device, Spec: p.Spec})
	}
	for i := range n.Vnic {
		spec := n.Vnic[i].Spec
		c.Vnic = append(c.Vnic, types.HostVirtualNicConfig{Device: n.Vnic[i].Device, Portgroup: n.Vnic[i].Portgroup, Spec: &spec})
	}
	return c
}

// virtualNicManagerInfo is HostVirtualNicManager.info (and host config.virtualNicManagerInfo)
// for a network: per NIC type of the template, every vmkernel NIC of the host as a candidate
// (key "<type>.<vnic key>"), management selected on the vmkernel NICs of the "Management
// Network" port group (vmk0 if none is), the other types on none. Upstream shares one template
// list, with vmk0 at 127.0.0.1, across all hosts.
func virtualNicManagerInfo(tmpl []types.VirtualNicManagerNetConfig, n *types.HostNetworkInfo) types.HostVirtualNicManagerInfo {
	var info types.HostVirtualNicManagerInfo
	for _, t := range tmpl {
		c := types.VirtualNicManagerNetConfig{NicType: t.NicType, MultiSelectAllowed: t.MultiSelectAllowed}
		for _, v := range n.Vnic {
			v.Key = t.NicType + "." + v.Key
			c.CandidateVnic = append(c.CandidateVnic, v)
			if t.NicType == string(types.HostVirtualNicManagerNicTypeManagement) && v.Portgroup == "Management Network" {
				c.SelectedVnic = append(c.SelectedVnic, v.Key)
			}
		}
		if t.NicType == string(types.HostVirtualNicManagerNicTypeManagement) && len(c.SelectedVnic) == 0 && len(c.CandidateVnic) > 0 {
			c.SelectedVnic = []string{c.CandidateVnic[0].Key}
		}
		info.NetConfig = append(info.NetConfig, c)
	}
	return info
}

func portgroup(tmpl types.HostPortGroup, name, vswitch string) types.HostPortGroup {
	pg := tmpl
	pg.Key = "key-vim.host.PortGroup-" + name
	pg.Vswitch = "key-vim.host.VirtualSwitch-" + vswitch
	pg.Port = nil
	pg.Spec.Name = name
	pg.Spec.VswitchName = vswitch
	return pg
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hashByte(s string) byte {
	var h byte
	for i := 0; i < len(s); i++ {
		h = h*31 + s[i]
	}
	return h
}
