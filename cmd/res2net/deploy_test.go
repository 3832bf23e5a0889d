package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/res2net/res2net/pkg/server"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// The deployment files are checked offline: no docker engine or cluster
// is at hand, so the tests parse them and hold them to the server they
// deploy (its flags, routes, port and user).

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	cmd  string // upper case
	args string
}

// dockerStage is one FROM ... AS name stage.
type dockerStage struct {
	from, name string
	body       []dockerInstruction
}

func parseDockerfile(t *testing.T, file string) []dockerStage {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var line string
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if line == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		cmd, args, _ := strings.Cut(line, " ")
		line = ""
		in := dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case "ARG":
			if len(stages) == 0 {
				continue // global build arguments
			}
			fallthrough
		default:
			if len(stages) == 0 {
				t.Fatalf("%s: %s before the first FROM", file, in.cmd)
			}
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return stages
}

// find returns the instructions of a stage named cmd.
func (s dockerStage) find(cmd string) []string {
	var out []string
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// dockerfileFacts is what the manifests must agree with.
type dockerfileFacts struct {
	uid  int
	port int
}

func checkDockerfile(t *testing.T) dockerfileFacts {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	// The binary is built static, as `make build` does.
	runs := strings.Join(build.find("RUN"), "\n")
	if !strings.Contains(runs, "CGO_ENABLED=0 go build") || !strings.Contains(runs, "./cmd/res2net") {
		t.Errorf("build stage does not build ./cmd/res2net with CGO_ENABLED=0:\n%s", runs)
	}
	// The final image holds only what is copied from earlier stages.
	if final.from != "scratch" && !strings.Contains(final.from, "distroless") {
		t.Errorf("final stage is FROM %s, want an image without a distribution", final.from)
	}
	copies := final.find("COPY")
	if !slices.ContainsFunc(copies, func(c string) bool {
		return strings.HasPrefix(c, "--from="+build.name+" ") && strings.HasSuffix(c, "/usr/local/bin/res2net")
	}) {
		t.Errorf("final stage does not copy the binary from %q: %q", build.name, copies)
	}
	users := final.find("USER")
	if len(users) != 1 {
		t.Fatalf("final stage has USER %q, want one", users)
	}
	uid, err := strconv.Atoi(strings.Split(users[0], ":")[0])
	if err != nil || uid == 0 {
		t.Errorf("USER %s: want a numeric non-root user (runAsNonRoot can only check numbers)", users[0])
	}
	if ep := final.find("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["/usr/local/bin/res2net"]` {
		t.Errorf("ENTRYPOINT %q, want the binary alone (manifests pass the subcommand)", ep)
	}
	if env := final.find("ENV"); !slices.Contains(env, "RES2NET_HOME=/models") {
		t.Errorf("ENV %q, want RES2NET_HOME=/models", env)
	}
	expose := final.find("EXPOSE")
	if len(expose) != 1 {
		t.Fatalf("EXPOSE %q, want one port", expose)
	}
	port, err := strconv.Atoi(expose[0])
	if err != nil {
		t.Fatal(err)
	}
	// The default command must be a valid serve command line on that port.
	cmd := final.find("CMD")
	var args []string
	if len(cmd) != 1 || yaml.Unmarshal([]byte(cmd[0]), &args) != nil {
		t.Fatalf("CMD %q, want a JSON array", cmd)
	}
	if opts := parseServeArgs(t, "Dockerfile CMD", args); addrPort(t, opts.Addr) != port {
		t.Errorf("CMD serves on %s, EXPOSE says %d", opts.Addr, port)
	}
	return dockerfileFacts{uid: uid, port: port}
}

func TestDockerfile(t *testing.T) {
	checkDockerfile(t)
}

// parseServeArgs parses a container's args with the serve command's own
// flags and validation.
func parseServeArgs(t *testing.T, what string, args []string) *serveOptions {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: args %q do not run serve", what, args)
	}
	opts := &serveOptions{IO: &ioStreams{}}
	cmd := &cobra.Command{}
	opts.addFlags(cmd)
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(cmd.Flags().Args()) > 0 {
		t.Fatalf("%s: stray arguments %q", what, cmd.Flags().Args())
	}
	if err := opts.validate(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if _, err := opts.specs(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return opts
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, ok := strings.Cut(addr, ":")
	port, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return port
}

// The subset of the Kubernetes objects the tests read.
type (
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec yaml.Node `yaml:"spec"`
	}
	deploymentSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds int             `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               securityContext `yaml:"securityContext"`
		InitContainers                []container     `yaml:"initContainers"`
		Containers                    []container     `yaml:"containers"`
		Volumes                       []struct {
			Name string `yaml:"name"`
		} `yaml:"volumes"`
	}
	securityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
	}
)

func (c *container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// probePort resolves a probe's port, a number or one of the container's
// port names.
func (c *container) probePort(t *testing.T, p *probe) int {
	t.Helper()
	switch v := p.HTTPGet.Port.(type) {
	case int:
		return v
	case string:
		for _, port := range c.Ports {
			if port.Name == v {
				return port.ContainerPort
			}
		}
	}
	t.Fatalf("container %s: probe port %v is not one of its ports", c.Name, p.HTTPGet.Port)
	return 0
}

// readObjects decodes every YAML document of the files matching pattern.
func readObjects(t *testing.T, pattern string) map[string]object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	out := map[string]object{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without kind, apiVersion or name", f)
			}
			out[o.Kind] = o
		}
	}
	return out
}

func decodeSpec(t *testing.T, o object, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// probedServer serves the tiny model as serve would, ready, so that the
// manifests' paths can be requested.
func probedServer(t *testing.T) string {
	t.Helper()
	c, err := classify.Load(tinyWeights, classify.Options{Transform: preprocess.DefaultOptions(), Labels: registry.Default.Classes})
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Options{})
	if err := s.AddModel("res2net", c, 0); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return ts.URL
}

// checkServeContainer holds a container to the server: its args parse as
// serve's, it listens on its declared port, probes the v2 health routes on
// it, and those paths answer 200.
func checkServeContainer(t *testing.T, what string, c *container, url string) *serveOptions {
	t.Helper()
	opts := parseServeArgs(t, what, c.Args)
	port := addrPort(t, opts.Addr)
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Errorf("%s: ports %+v, the server listens on %d", what, c.Ports, port)
	}
	for _, p := range []struct {
		probe *probe
		path  string
	}{{c.LivenessProbe, "/v2/health/live"}, {c.ReadinessProbe, "/v2/health/ready"}} {
		if p.probe == nil {
			t.Errorf("%s: no probe on %s", what, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || c.probePort(t, p.probe) != port {
			t.Errorf("%s: probe %+v, want %s on port %d", what, p.probe.HTTPGet, p.path, port)
		}
		resp, err := http.Get(url + p.probe.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: GET %s answers %d", what, p.probe.HTTPGet.Path, resp.StatusCode)
		}
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: resources %+v, want a CPU request (for the autoscaler) and a memory limit", what, c.Resources)
	}
	if threads := opts.Threads; threads == 0 {
		t.Errorf("%s: --threads not set: in a pod the CPU count is the node's", what)
	}
	return opts
}

func TestKubernetesManifests(t *testing.T) {
	facts := checkDockerfile(t)
	url := probedServer(t)
	objs := readObjects(t, "deploy/kubernetes/*.yaml")

	dep, ok := objs["Deployment"]
	if !ok || dep.APIVersion != "apps/v1" {
		t.Fatalf("no apps/v1 Deployment in %v", objs)
	}
	var spec deploymentSpec
	decodeSpec(t, dep, &spec)
	pod := spec.Template.Spec
	labels := spec.Template.Metadata.Labels
	for k, v := range spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, labels)
		}
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != facts.uid {
		t.Errorf("pod securityContext %+v, want runAsNonRoot and the Dockerfile's user %d", sc, facts.uid)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := &pod.Containers[0]
	opts := checkServeContainer(t, "deployment", c, url)
	if grace := float64(pod.TerminationGracePeriodSeconds); grace <= (opts.DrainDelay + opts.ShutdownTimeout).Seconds() {
		t.Errorf("terminationGracePeriodSeconds %v does not cover --drain-delay %v + --shutdown-timeout %v", grace, opts.DrainDelay, opts.ShutdownTimeout)
	}
	if !opts.Offline || c.env("RES2NET_HOME") != "/models" {
		t.Errorf("serve should read the checkpoint the init container fetched: --offline %v, RES2NET_HOME %q", opts.Offline, c.env("RES2NET_HOME"))
	}
	ann := spec.Template.Metadata.Annotations
	if ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(facts.port) {
		t.Errorf("prometheus annotations %v", ann)
	}
	if resp, err := http.Get(url + ann["prometheus.io/path"]); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET %s: %v %v", ann["prometheus.io/path"], resp, err)
	}
	// The init container's args are a valid fetch command into the same
	// volume.
	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d init containers, want the fetch", len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	fetch := newFetchCmd(&ioStreams{})
	if len(ic.Args) == 0 || ic.Args[0] != "fetch" || fetch.ParseFlags(ic.Args[1:]) != nil || ic.env("RES2NET_HOME") != "/models" {
		t.Errorf("init container args %q, RES2NET_HOME %q: want a fetch into /models", ic.Args, ic.env("RES2NET_HOME"))
	}
	mounts := func(c container) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/models" {
				return m.Name
			}
		}
		return ""
	}
	if v := mounts(ic); v == "" || v != mounts(*c) || !slices.ContainsFunc(pod.Volumes, func(vol struct {
		Name string `yaml:"name"`
	}) bool {
		return vol.Name == v
	}) {
		t.Errorf("the init container and the server do not share a volume at /models")
	}

	svc, ok := objs["Service"]
	if !ok {
		t.Fatal("no Service")
	}
	var svcSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	decodeSpec(t, svc, &svcSpec)
	for k, v := range svcSpec.Selector {
		if labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, labels)
		}
	}
	if len(svcSpec.Ports) != 1 || c.probePort(t, &probe{HTTPGet: struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	}{Port: svcSpec.Ports[0].TargetPort}}) != facts.port {
		t.Errorf("Service ports %+v do not reach the container port %d", svcSpec.Ports, facts.port)
	}

	hpa, ok := objs["HorizontalPodAutoscaler"]
	if !ok || hpa.APIVersion != "autoscaling/v2" {
		t.Fatal("no autoscaling/v2 HorizontalPodAutoscaler")
	}
	var hpaSpec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource struct {
				Name string `yaml:"name"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	}
	decodeSpec(t, hpa, &hpaSpec)
	ref := hpaSpec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != dep.Metadata.Name || ref.APIVersion != dep.APIVersion {
		t.Errorf("HPA targets %+v, not the Deployment %s", ref, dep.Metadata.Name)
	}
	if hpaSpec.MinReplicas < 1 || hpaSpec.MaxReplicas < hpaSpec.MinReplicas || len(hpaSpec.Metrics) == 0 || hpaSpec.Metrics[0].Resource.Name != "cpu" {
		t.Errorf("HPA spec %+v", hpaSpec)
	}
}

func TestKServeInferenceService(t *testing.T) {
	facts := checkDockerfile(t)
	url := probedServer(t)
	isvc, ok := readObjects(t, "deploy/kserve/*.yaml")["InferenceService"]
	if !ok || isvc.APIVersion != "serving.kserve.io/v1beta1" {
		t.Fatal("no serving.kserve.io/v1beta1 InferenceService")
	}
	var spec struct {
		Predictor struct {
			MinReplicas     int             `yaml:"minReplicas"`
			MaxReplicas     int             `yaml:"maxReplicas"`
			SecurityContext securityContext `yaml:"securityContext"`
			Containers      []container     `yaml:"containers"`
		} `yaml:"predictor"`
	}
	decodeSpec(t, isvc, &spec)
	p := spec.Predictor
	if len(p.Containers) != 1 || p.Containers[0].Name != "kserve-container" {
		t.Fatalf("predictor containers %+v, want one named kserve-container", p.Containers)
	}
	c := &p.Containers[0]
	opts := checkServeContainer(t, "kserve", c, url)
	if sc := p.SecurityContext; sc.RunAsUser == nil || *sc.RunAsUser != facts.uid {
		t.Errorf("predictor securityContext %+v, want the Dockerfile's user %d", sc, facts.uid)
	}
	// KServe clients address the model by the service's name.
	if len(opts.Names) != 1 || opts.Names[0] != isvc.Metadata.Name {
		t.Errorf("--name %q, want the InferenceService's name %q", opts.Names, isvc.Metadata.Name)
	}
	// The storage initializer downloads STORAGE_URI into /mnt/models under
	// its base name, which --weights must name.
	uri := c.env("STORAGE_URI")
	if uri != registry.Default.URL {
		t.Errorf("STORAGE_URI %q, want the published checkpoint %q", uri, registry.Default.URL)
	}
	if want := "/mnt/models/" + path.Base(uri); len(opts.Weights) != 1 || opts.Weights[0] != want {
		t.Errorf("--weights %q, want %s", opts.Weights, want)
	}
	if resp, err := http.Get(fmt.Sprintf("%s/v2/models/%s/ready", url, isvc.Metadata.Name)); err != nil || resp.StatusCode != 200 {
		t.Errorf("the model's v2 ready route: %v %v", resp, err)
	}
	if p.MinReplicas < 1 || p.MaxReplicas < p.MinReplicas {
		t.Errorf("replicas %d..%d", p.MinReplicas, p.MaxReplicas)
	}
}
