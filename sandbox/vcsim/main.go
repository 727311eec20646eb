// Command dpio-vcsim is the sandbox's vCenter: govmomi's simulator with a YAML inventory and the
// DirectPath I/O rules of docs/design.md (each with its source next to the code), plus an admin
// API for fault injection and call counts.
//
//	dpio-vcsim --inventory inventory/default.yaml [--listen 127.0.0.1:0] [--admin-listen 127.0.0.1:0] ...
//	dpio-vcsim generate --hosts 512 --devices-per-host 8 --vms 1000 [--clusters 64] [--folders 8]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"dpio.io/sandbox/vcsim/sim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "generate" {
		if err := generate(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "dpio-vcsim generate:", err)
			os.Exit(2)
		}
		return
	}
	if err := serve(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dpio-vcsim:", err)
		os.Exit(1)
	}
}

func generate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	o := sim.GenerateOptions{}
	fs.IntVar(&o.Hosts, "hosts", 64, "number of hosts")
	fs.IntVar(&o.DevicesPerHost, "devices-per-host", 8, "passthrough-capable GPUs per host")
	fs.IntVar(&o.VMs, "vms", 500, "number of VMs")
	fs.IntVar(&o.Clusters, "clusters", 1, "number of clusters the hosts are spread over")
	fs.IntVar(&o.Folders, "folders", 0, "number of team folders (team-01, ...) the VMs are spread over; 0: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out, err := sim.Generate(o).YAML()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func serve(args []string) error {
	fs := flag.NewFlagSet("dpio-vcsim", flag.ContinueOnError)
	inventory := fs.String("inventory", "", "inventory YAML file (required)")
	o := sim.ServeOptions{}
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "SDK listen address")
	fs.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:0", "admin API listen address")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate for the SDK (self-signed into --state-dir when absent)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for datastores and generated TLS files (temporary when empty)")
	fs.StringVar(&o.Username, "username", "administrator@vsphere.local", "the only user name Login accepts")
	fs.StringVar(&o.Password, "password", "dpio-sandbox", "the only password Login accepts")
	rebootDelay := fs.Duration("reboot-delay", 2*time.Second, "how long a rebooting host stays notResponding")
	readyFile := fs.String("ready-file", "", "also write the ready JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *inventory == "" {
		return fmt.Errorf("--inventory is required")
	}
	inv, err := sim.LoadInventoryFile(*inventory)
	if err != nil {
		return err
	}
	start := time.Now()
	s, err := sim.New(inv, sim.Options{RebootDelay: *rebootDelay, StateDir: o.StateDir})
	if err != nil {
		return err
	}
	defer s.Close()
	srv, err := s.Serve(o)
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Printf("inventory %s loaded in %s", *inventory, time.Since(start).Round(time.Millisecond))

	line, _ := json.Marshal(map[string]any{
		"sdk_url": srv.SDKURL, "admin_url": srv.AdminURL, "pid": os.Getpid(), "ca_file": srv.CAFile(),
	})
	if *readyFile != "" {
		// Write then rename, so a watcher never reads half a line.
		tmp := *readyFile + ".tmp"
		if err := os.WriteFile(tmp, append(line, '\n'), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *readyFile); err != nil {
			return err
		}
	}
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	log.Print("shutting down")
	return nil
}
