// dpio-gitops-health evaluates Kubernetes objects the way GitOps engines do, with their own code:
//
//   - Argo CD: the argocd-cm ConfigMap is read by argo-cd's util/settings SettingsManager (as the
//     application controller reads it), its resource overrides become util/lua
//     ResourceHealthOverrides (lua.VM, standard libraries closed unless useOpenLibs is set), and
//     gitops-engine's health.GetResourceHealth runs them, deletion handling included.
//   - kstatus (Flux, kubectl wait, kpt, cli-utils): sigs.k8s.io/cli-utils pkg/kstatus/status.Compute.
//
// Input on stdin: JSON objects, one per line, concatenated, or in JSON arrays. Output on stdout:
// one JSON line per object, in order:
//
//	{"argo":{"status":"Healthy","message":"..."},"kstatus":{"status":"Current","message":"..."}}
//
// An evaluation error is reported in the object's "error" field; the status is then what the
// engine itself reports on that error (Argo CD: Unknown with the error's text).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// verdict is one engine's answer for one object.
type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

type result struct {
	Argo    verdict `json:"argo"`
	Kstatus verdict `json:"kstatus"`
}

func main() {
	configMap := flag.String("argocd-cm", "", "argocd-cm ConfigMap (YAML or JSON) whose resource.customizations apply")
	flag.Parse()
	// The SettingsManager logs its informers at info level: only warnings and errors matter here.
	log.SetLevel(log.WarnLevel)
	if *configMap == "" {
		fail(errors.New("-argocd-cm is required"))
	}
	overrides, err := loadOverrides(*configMap)
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	err = eachObject(os.Stdin, func(obj *unstructured.Unstructured) error {
		return encoder.Encode(evaluate(obj, overrides))
	})
	if err != nil {
		out.Flush()
		fail(err)
	}
}

// loadOverrides reads the ConfigMap through Argo CD's SettingsManager, so that the split
// resource.customizations.health.<group_kind> keys are parsed by Argo CD's own code.
func loadOverrides(path string) (lua.ResourceHealthOverrides, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Name != "argocd-cm" || cm.Labels["app.kubernetes.io/part-of"] != "argocd" {
		return nil, fmt.Errorf("%s: Argo CD reads only a ConfigMap argocd-cm labelled app.kubernetes.io/part-of=argocd", path)
	}
	if cm.Namespace == "" {
		cm.Namespace = "argocd"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	manager := settings.NewSettingsManager(ctx, fake.NewClientset(&cm), cm.Namespace)
	found, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, err
	}
	return lua.ResourceHealthOverrides(found), nil
}

func evaluate(obj *unstructured.Unstructured, overrides lua.ResourceHealthOverrides) result {
	var r result
	argo, err := health.GetResourceHealth(obj, overrides)
	if argo != nil {
		r.Argo = verdict{Status: string(argo.Status), Message: argo.Message}
	}
	if err != nil {
		r.Argo.Error = err.Error()
	} else if argo == nil {
		// Argo CD shows no health for an object that no check covers.
		r.Argo.Error = "no health check applies"
	}
	computed, err := status.Compute(obj)
	if computed != nil {
		r.Kstatus = verdict{Status: computed.Status.String(), Message: computed.Message}
	}
	if err != nil {
		r.Kstatus.Error = err.Error()
	}
	return r
}

// eachObject decodes JSON values from r; an array's elements are objects in turn. Numbers are
// decoded as the API machinery decodes them (int64 where integral), so scripts see what Argo CD sees.
func eachObject(r io.Reader, each func(*unstructured.Unstructured) error) error {
	decoder := json.NewDecoder(r)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("input value %d: %w", n, err)
		}
		var value any
		if err := utiljson.Unmarshal(raw, &value); err != nil {
			return fmt.Errorf("input value %d: %w", n, err)
		}
		items, isArray := value.([]any)
		if !isArray {
			items = []any{value}
		}
		for _, item := range items {
			object, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("input value %d: want a JSON object, got %T", n, item)
			}
			if err := each(&unstructured.Unstructured{Object: object}); err != nil {
				return err
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dpio-gitops-health:", err)
	os.Exit(2)
}
