package k8s

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
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
	bin := testenv.Build(t, "purchasesync/cmd/purchasesync")
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
			checkWiring(t, objs, configMaps, guideSecrets(t))
			checkPartitions(t, objs)
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
		if strings.HasSuffix(name, "_FILE") && value != "" && !mounted(c, value) {
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
		if tt := join.DefaultConfig().TransactionTimeout; grace == nil || float64(*grace) <= tt.Seconds() {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed the transaction timeout %s", what, grace, tt)
		}
	}
}

// mounted reports whether path is under one of the container's mounts.
func mounted(c corev1.Container, path string) bool {
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

// guideSecrets reads the Secrets the deploy guide tells the SRE to create
// (`kubectl create secret generic NAME --from-file=KEY=...`): name → keys.
func guideSecrets(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	cmd := regexp.MustCompile(`create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)`)
	key := regexp.MustCompile(`--from-file=([^=\s]+)=`)
	for _, m := range cmd.FindAllStringSubmatch(string(b), -1) {
		for _, k := range key.FindAllStringSubmatch(m[2], -1) {
			out[m[1]] = append(out[m[1]], k[1])
		}
	}
	if len(out) == 0 {
		t.Fatal("deploy/README.md creates no Secret (kubectl create secret generic NAME --from-file=KEY=...)")
	}
	return out
}

// workload is a rendered pod template with what other objects refer to.
type workload struct {
	what   string
	kind   string
	labels map[string]string
	ports  map[string]int32 // container port name → number
	job    bool
}

// selects reports whether a label selector (matchLabels only, as these
// manifests use) picks the workload's pods.
func selects(sel map[string]string, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkWiring checks what the API server accepts but a cluster would get
// wrong: Services, PDBs, NetworkPolicies and PodMonitors select pods that
// exist and name ports those pods have; every container port is open to
// someone (a NetworkPolicy that selects a pod denies what it does not
// allow) and only the ingest's http port to everyone; the StatefulSet's
// governing Service exists and is headless; the HPA scales a Deployment
// that exists; every volume, claim and secret key a pod reads exists in
// the manifests or in what the deploy guide creates.
func checkWiring(t *testing.T, objs []object, configMaps map[string]map[string]string, secrets map[string][]string) {
	t.Helper()
	var ws []workload
	services := map[string]*corev1.Service{}
	claims := map[string]bool{}
	deployments := map[string]bool{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			services[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			claims[v.Name] = true
		case *appsv1.Deployment:
			deployments[v.Name] = true
		}
	}
	for _, o := range objs {
		tmpl, ok := podSpecOf(o)
		if !ok {
			continue
		}
		w := workload{what: o.kind + " " + o.name, kind: o.kind, labels: tmpl.Labels, ports: map[string]int32{}, job: o.kind == "Job"}
		for _, c := range tmpl.Spec.Containers {
			for _, p := range c.Ports {
				w.ports[p.Name] = p.ContainerPort
			}
		}
		ws = append(ws, w)
		checkVolumes(t, w.what, tmpl.Spec, configMaps, claims, secrets)
		if ss, ok := o.obj.(*appsv1.StatefulSet); ok {
			if svc := services[ss.Spec.ServiceName]; svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("%s: serviceName %q is not a headless Service of the manifests", w.what, ss.Spec.ServiceName)
			}
		}
	}
	matching := func(what string, sel map[string]string) []workload {
		var out []workload
		for _, w := range ws {
			if selects(sel, w.labels) {
				out = append(out, w)
			}
		}
		if len(sel) == 0 || len(out) == 0 {
			t.Errorf("%s: its selector %v picks no pod of the manifests", what, sel)
		}
		return out
	}
	// open[workload][port] = allowed by some NetworkPolicy.
	open := map[string]map[int32]bool{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			for _, w := range matching("Service "+v.Name, v.Spec.Selector) {
				for _, p := range v.Spec.Ports {
					tp := p.TargetPort
					if _, ok := w.ports[tp.StrVal]; tp.StrVal != "" && !ok || tp.StrVal == "" && !slices.Contains(slices.Collect(maps.Values(w.ports)), tp.IntVal) {
						t.Errorf("Service %s: targetPort %s is not a container port of %s", v.Name, tp.String(), w.what)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			matching("PodDisruptionBudget "+v.Name, v.Spec.Selector.MatchLabels)
		case *autoscalingv2.HorizontalPodAutoscaler:
			if ref := v.Spec.ScaleTargetRef; ref.Kind != "Deployment" || !deployments[ref.Name] {
				t.Errorf("HorizontalPodAutoscaler %s scales %s %s, not a Deployment of the manifests", v.Name, ref.Kind, ref.Name)
			}
		case *networkingv1.NetworkPolicy:
			for _, w := range matching("NetworkPolicy "+v.Name, v.Spec.PodSelector.MatchLabels) {
				for _, rule := range v.Spec.Ingress {
					for _, p := range rule.Ports {
						n := p.Port.IntVal
						if p.Port.StrVal != "" {
							n = w.ports[p.Port.StrVal]
						}
						if open[w.what] == nil {
							open[w.what] = map[int32]bool{}
						}
						open[w.what][n] = true
						if len(rule.From) == 0 && n != w.ports["http"] {
							t.Errorf("NetworkPolicy %s opens port %s of %s to everyone; only an ingest's http port may be public", v.Name, p.Port.String(), w.what)
						}
					}
				}
			}
		case *monitoringv1.PodMonitor:
			for _, w := range matching("PodMonitor "+v.Name, v.Spec.Selector.MatchLabels) {
				for _, ep := range v.Spec.PodMetricsEndpoints {
					if _, ok := w.ports[ptrString(ep.Port)]; !ok && !w.job {
						t.Errorf("PodMonitor %s: port %q is not a container port of %s", v.Name, ptrString(ep.Port), w.what)
					}
				}
			}
		}
	}
	for _, w := range ws {
		for name, n := range w.ports {
			if !open[w.what][n] {
				t.Errorf("%s: container port %s (%d) is open to no one in the NetworkPolicies", w.what, name, n)
			}
		}
	}
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkVolumes: every mount names a volume; every claim is in the
// manifests; every Secret is one the guide creates, and every _FILE
// variable under a Secret's mount names a key of it.
func checkVolumes(t *testing.T, what string, spec corev1.PodSpec, configMaps map[string]map[string]string, claims map[string]bool, secrets map[string][]string) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		if v.PersistentVolumeClaim != nil && !claims[v.PersistentVolumeClaim.ClaimName] {
			t.Errorf("%s: volume %s claims %s, not a PersistentVolumeClaim of the manifests", what, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
		if v.Secret != nil {
			if _, ok := secrets[v.Secret.SecretName]; !ok {
				t.Errorf("%s: volume %s is Secret %s, which deploy/README.md does not create", what, v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, c := range spec.Containers {
		files := map[string]string{} // path → variable (…_FILE, …FILE such as TLS_CAFILE)
		for _, e := range c.Env {
			if strings.HasSuffix(e.Name, "FILE") {
				files[e.Value] = e.Name
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				for k, v := range configMaps[ef.ConfigMapRef.Name] {
					if strings.HasSuffix(k, "FILE") {
						files[v] = k
					}
				}
			}
		}
		for _, m := range c.VolumeMounts {
			v, ok := vols[m.Name]
			if !ok {
				t.Errorf("%s: mount %s names no volume", what, m.Name)
				continue
			}
			if v.Secret == nil {
				continue
			}
			for path, name := range files {
				if rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/"); ok && !slices.Contains(secrets[v.Secret.SecretName], rel) {
					t.Errorf("%s: %s=%s, but the Secret %s that deploy/README.md creates has no key %q", what, name, path, v.Secret.SecretName, rel)
				}
			}
		}
	}
}

// checkPartitions: the join and sink pods share the partitions that the
// migrate Job fixes for good; a pod beyond that count would sit idle.
func checkPartitions(t *testing.T, objs []object) {
	t.Helper()
	partitions := 0
	for _, o := range objs {
		if j, ok := o.obj.(*batchv1.Job); ok {
			for _, e := range j.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "PURCHASESYNC_KAFKA_PARTITIONS" {
					fmt.Sscan(e.Value, &partitions)
				}
			}
		}
	}
	if partitions == 0 {
		t.Fatal("the migrate Job does not set PURCHASESYNC_KAFKA_PARTITIONS")
	}
	for _, o := range objs {
		var replicas *int32
		switch v := o.obj.(type) {
		case *appsv1.StatefulSet:
			replicas = v.Spec.Replicas
		case *appsv1.Deployment:
			if v.Name == "purchasesync-sink" {
				replicas = v.Spec.Replicas
			}
		}
		if replicas != nil && int(*replicas) > partitions {
			t.Errorf("%s %s: %d replicas, more than the %d partitions they share", o.kind, o.name, *replicas, partitions)
		}
	}
}
