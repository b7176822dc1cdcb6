package k8s

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"purchasesync/deploy/testenv"
	"purchasesync/processors/join"
	"purchasesync/schemas"
)

var update = flag.Bool("update", false, "rewrite base/prometheusrule.yaml from deploy/prometheus/alerts.yml")

// kinds are the API types the manifests may use, each decoded strictly.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

// object is one rendered manifest, decoded.
type object struct {
	kind, name string
	obj        any
}

// render builds a kustomization with the kustomize library (what
// `kubectl kustomize` runs) and decodes every resource strictly: an unknown
// field, kind or apiVersion fails.
func render(t *testing.T, dir string) []object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(b, &tm); err != nil {
			t.Fatal(err)
		}
		key := tm.APIVersion + "/" + tm.Kind
		mk, ok := kinds[key]
		if !ok {
			t.Errorf("%s: %s %s is not a kind these manifests may use (a Secret must never be inlined)", dir, key, r.GetName())
			continue
		}
		obj := mk()
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", dir, key, r.GetName(), err)
			continue
		}
		out = append(out, object{tm.Kind, r.GetName(), obj})
	}
	return out
}

// binaryEnv lists, per subcommand, the PURCHASESYNC_* variables the binary
// reads (from its -h, which names each flag's variable and _FILE form).
func binaryEnv(t *testing.T, subs ...string) map[string][]string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "purchasesync")
	build := exec.Command("go", "build", "-o", bin, "./cmd/purchasesync")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`PURCHASESYNC_[A-Z0-9_]+`)
	env := map[string][]string{}
	for _, sub := range subs {
		out, _ := exec.Command(bin, sub, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
		names := re.FindAllString(string(out), -1)
		if len(names) == 0 {
			t.Fatalf("%s -h names no variables:\n%s", sub, out)
		}
		slices.Sort(names)
		env[sub] = slices.Compact(names)
	}
	return env
}

func podSpecOf(o object) (*corev1.PodTemplateSpec, bool) {
	switch v := o.obj.(type) {
	case *appsv1.Deployment:
		return &v.Spec.Template, true
	case *appsv1.StatefulSet:
		return &v.Spec.Template, true
	case *batchv1.Job:
		return &v.Spec.Template, true
	}
	return nil, false
}

// secretVars may only come from files (their _FILE variables), never from
// a value in a manifest.
var secretVars = []string{"PURCHASESYNC_SHOPIFY_API_SECRET", "PURCHASESYNC_ADMIN_TOKEN", "PURCHASESYNC_KAFKA_SASL_PASSWORD",
	"PURCHASESYNC_CLICKHOUSE_PASSWORD", "PURCHASESYNC_REGISTRAR_APIKEY", "PURCHASESYNC_SHOPIFY_ACCESSTOKENS", "PURCHASESYNC_NOTIFIER_URL"}

func TestManifests(t *testing.T) {
	root := testenv.RepoRoot()
	env := binaryEnv(t, "ingest", "join", "sink", "control", "migrate")
	for _, dir := range []string{"base", "overlays/production"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, filepath.Join(root, "deploy", "k8s", dir))
			configMaps := map[string]map[string]string{}
			count := map[string]int{}
			for _, o := range objs {
				count[o.kind]++
				if cm, ok := o.obj.(*corev1.ConfigMap); ok {
					configMaps[cm.Name] = cm.Data
				}
			}
			for kind, n := range map[string]int{"Deployment": 3, "StatefulSet": 1, "Job": 1, "HorizontalPodAutoscaler": 1,
				"PodDisruptionBudget": 3, "NetworkPolicy": 2, "PodMonitor": 1, "PrometheusRule": 1} {
				if count[kind] != n {
					t.Errorf("%d %s, want %d", count[kind], kind, n)
				}
			}
			for _, o := range objs {
				tmpl, ok := podSpecOf(o)
				if !ok {
					continue
				}
				checkPod(t, o, tmpl, env, configMaps)
			}
			if dir == "overlays/production" {
				for _, o := range objs {
					tmpl, ok := podSpecOf(o)
					if !ok {
						continue
					}
					if img := tmpl.Spec.Containers[0].Image; strings.HasSuffix(img, ":dev") || strings.HasPrefix(img, "localhost/") {
						t.Errorf("%s %s: production image %q, want a pinned registry image", o.kind, o.name, img)
					}
				}
			}
		})
	}
}

// checkPod checks one workload's pod template: its subcommand's flags and
// variables, probes, ports, secrets and security context.
func checkPod(t *testing.T, o object, tmpl *corev1.PodTemplateSpec, env map[string][]string, configMaps map[string]map[string]string) {
	t.Helper()
	spec := tmpl.Spec
	what := o.kind + " " + o.name
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: the pod must run as non-root", what)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token it does not need", what)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Args) == 0 {
		t.Fatalf("%s: no subcommand in args", what)
	}
	sub := c.Args[0]
	known, ok := env[sub]
	if !ok {
		t.Fatalf("%s: subcommand %q is not one the test knows", what, sub)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: the container needs a read-only root, no privilege escalation and no capabilities", what)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: memory request and limit and a CPU request are needed", what)
	}
	vars := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("%s: %s comes from a secretKeyRef; mount the secret and use its _FILE variable", what, e.Name)
		}
		vars[e.Name] = e.Value
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("%s: envFrom other than a ConfigMap", what)
			continue
		}
		data, ok := configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: ConfigMap %s is not in the manifests", what, ef.ConfigMapRef.Name)
		}
		for k, v := range data {
			vars[k] = v
		}
	}
	for _, a := range c.Args[1:] {
		t.Errorf("%s: flag %q on the command line; use its variable (checked against the binary)", what, a)
	}
	for name, value := range vars {
		if !slices.Contains(known, name) {
			t.Errorf("%s: %s is not a variable of `purchasesync %s`", what, name, sub)
		}
		if slices.Contains(secretVars, name) && value != "" {
			t.Errorf("%s: secret %s has its value in the manifest; use %s_FILE", what, name, name)
		}
		if strings.HasSuffix(name, "_FILE") && value != "" && !mounted(spec, c, value) {
			t.Errorf("%s: %s=%s is not under a mounted volume", what, name, value)
		}
	}
	// Probes hit the ops listener's real paths on its real port.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if sub != "migrate" {
		_, opsPort, err := net.SplitHostPort(vars["PURCHASESYNC_OPS_ADDR"])
		if err != nil || fmt.Sprint(ports["ops"]) != opsPort {
			t.Errorf("%s: PURCHASESYNC_OPS_ADDR %q does not listen on the container port named ops (%d)", what, vars["PURCHASESYNC_OPS_ADDR"], ports["ops"])
		}
		for probe, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", what, probe)
				continue
			}
			want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[probe]
			if p.HTTPGet.Path != want || p.HTTPGet.Port.StrVal != "ops" {
				t.Errorf("%s: %s probe %s on port %q, want %s on ops", what, probe, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
			}
		}
	}
	if sub == "ingest" {
		if _, port, _ := net.SplitHostPort(vars["PURCHASESYNC_INGEST_ADDR"]); port != fmt.Sprint(ports["http"]) {
			t.Errorf("%s: PURCHASESYNC_INGEST_ADDR %q is not the container port http", what, vars["PURCHASESYNC_INGEST_ADDR"])
		}
	}
	if sub == "join" {
		ok := false
		for _, e := range c.Env {
			if e.Name == "PURCHASESYNC_JOIN_INSTANCE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				ok = true
			}
		}
		if !ok || o.kind != "StatefulSet" {
			t.Errorf("%s: the join must be a StatefulSet whose pod name is PURCHASESYNC_JOIN_INSTANCE", what)
		}
		grace := spec.TerminationGracePeriodSeconds
		if tt := join.DefaultConfig(schemas.Topics{}, "").TransactionTimeout; grace == nil || float64(*grace) <= tt.Seconds() {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed the transaction timeout %s", what, grace, tt)
		}
	}
}

// mounted reports whether path is under one of the container's mounts.
func mounted(spec corev1.PodSpec, c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

// alertGroups reads deploy/prometheus/alerts.yml strictly into the
// Prometheus Operator's rule groups.
func alertGroups(t *testing.T) []monitoringv1.RuleGroup {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return f.Groups
}

const ruleHeader = "# Generated from deploy/prometheus/alerts.yml by\n" +
	"#   go test ./deploy/k8s -run PrometheusRule -update\n" +
	"# Do not edit: change alerts.yml and regenerate (a test checks they agree).\n"

// TestPrometheusRuleFromAlerts: base/prometheusrule.yaml is alerts.yml as a
// PrometheusRule, byte for byte as generated (-update rewrites it).
func TestPrometheusRuleFromAlerts(t *testing.T) {
	rule := monitoringv1.PrometheusRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule"},
		ObjectMeta: metav1.ObjectMeta{Name: "purchasesync", Labels: map[string]string{"app.kubernetes.io/name": "purchasesync"}},
		Spec:       monitoringv1.PrometheusRuleSpec{Groups: alertGroups(t)},
	}
	b, err := yaml.Marshal(rule)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(ruleHeader), b...)
	path := filepath.Join(testenv.RepoRoot(), "deploy", "k8s", "base", "prometheusrule.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not alerts.yml as generated; run go test ./deploy/k8s -run PrometheusRule -update", path)
	}
	n := 0
	for _, g := range rule.Spec.Groups {
		n += len(g.Rules)
	}
	if n == 0 {
		t.Error("no rules in alerts.yml")
	}
}
