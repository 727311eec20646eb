package sim

import (
	"fmt"

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
		ip := *vnicTmpl.Spec.Ip
		ip.Dhcp = v.IP == ""
		ip.IpAddress = orDefault(v.IP, "127.0.0.1")
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
		n.Vswitch = append(n.Vswitch, sw)
	}
	return &n
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
