// Package packaging holds the nfpm configuration, the systemd units and the
// install scripts of the .deb and .rpm packages (`make packages`); its tests
// check them.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helexa/roles"
	"helexa/roles/config"
)

// The packaged configuration loads and puts the models where the
// neuron's unit may write.
func TestPackagedConfig(t *testing.T) {
	cfg, err := config.Load("helexa.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Neuron.ModelsDirs; len(got) != 1 || got[0] != "/var/lib/helexa/models" {
		t.Fatalf("models_dir = %v", got)
	}
}

// unit reads a unit file into key → values (a key may repeat).
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q", path, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// The units run the binary as the helexa user, hardened, restart on
// failure and give the drain time to stop; the neuron may use only the
// NVIDIA devices, the gateway none and reloads on SIGHUP. systemd-analyze
// verify passes on both when it is installed.
func TestUnits(t *testing.T) {
	for _, name := range []string{"helexa-gateway.service", "helexa-neuron.service"} {
		u := unit(t, name)
		one := func(k string) string {
			if len(u[k]) != 1 {
				t.Errorf("%s: %s set %d times", name, k, len(u[k]))
				return ""
			}
			return u[k][0]
		}
		for k, want := range map[string]string{
			"User": "helexa", "Group": "helexa", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
			"Restart": "on-failure", "DevicePolicy": "closed", "ProtectHome": "yes", "PrivateTmp": "yes",
		} {
			if got := one(k); got != want {
				t.Errorf("%s: %s=%q, want %q", name, k, got, want)
			}
		}
		role := strings.TrimSuffix(strings.TrimPrefix(name, "helexa-"), ".service")
		if got := one("ExecStart"); got != "/usr/bin/helexa --role="+role+" --config /etc/helexa/helexa.toml --log-format json" {
			t.Errorf("%s: ExecStart=%q", name, got)
		}
		if d, err := time.ParseDuration(one("TimeoutStopSec")); err != nil || d < roles.ShutdownGrace+10*time.Second {
			t.Errorf("%s: TimeoutStopSec=%s is not the drain time (%s) and then some: %v", name, one("TimeoutStopSec"), roles.ShutdownGrace, err)
		}
		if !strings.Contains(one("ReadWritePaths"), "/var/lib/helexa") {
			t.Errorf("%s: ReadWritePaths=%q", name, one("ReadWritePaths"))
		}
		devices := strings.Join(u["DeviceAllow"], ",")
		switch role {
		case "neuron":
			for _, d := range []string{"char-nvidia-frontend rw", "char-nvidia-uvm rw", "/dev/nvidiactl rw", "/dev/nvidia-uvm rw"} {
				if !strings.Contains(devices, d) {
					t.Errorf("%s: no DeviceAllow=%s", name, d)
				}
			}
			if !strings.Contains(one("ReadWritePaths"), "/var/lib/helexa/models") {
				t.Errorf("%s: the models folder is not writable", name)
			}
		case "gateway":
			if devices != "" || one("PrivateDevices") != "yes" {
				t.Errorf("%s: the gateway needs no devices (DeviceAllow=%s)", name, devices)
			}
			if got := one("ExecReload"); got != "/bin/kill -HUP $MAINPID" {
				t.Errorf("%s: ExecReload=%q", name, got)
			}
		}
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed (apt-get install systemd)")
		}
		// verify wants ExecStart's binary to exist: point it at this test
		// binary, which stands for /usr/bin/helexa.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var paths []string
		for _, name := range []string{"helexa-gateway.service", "helexa-neuron.service"} {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/bin/helexa", self)), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// The files every package must hold.
var wantFiles = []string{
	"/usr/bin/helexa",
	"/usr/lib/systemd/system/helexa-gateway.service",
	"/usr/lib/systemd/system/helexa-neuron.service",
	"/etc/helexa/helexa.toml",
	"/etc/helexa/helexa.env",
	"/var/lib/helexa",
	"/var/lib/helexa/models",
}

var wantConfig = []string{"/etc/helexa/helexa.toml", "/etc/helexa/helexa.env"}

// distDir is where `make packages` wrote the packages.
func distDir(t *testing.T) (dir string, required bool) {
	if d := os.Getenv("HELEXA_DIST"); d != "" {
		return d, true
	}
	return filepath.Join("..", "dist"), false
}

func packages(t *testing.T, pattern string, want int) []string {
	dir, required := distDir(t)
	got, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(got) == 0 {
		if required {
			t.Fatalf("no %s in %s", pattern, dir)
		}
		t.Skipf("no %s in %s: run make packages (make packages-check runs this test after it)", pattern, dir)
	}
	if required && len(got) != want {
		t.Fatalf("%d packages %s in %s, want %d (amd64 and arm64): %v", len(got), pattern, dir, want, got)
	}
	return got
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func hasAll(t *testing.T, pkg, what, listing string, want []string, trim func(string) string) {
	t.Helper()
	have := map[string]bool{}
	for _, line := range strings.Split(listing, "\n") {
		if p := trim(line); p != "" {
			have[strings.TrimSuffix(p, "/")] = true
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s: %s lacks %s:\n%s", filepath.Base(pkg), what, w, listing)
		}
	}
}

// dpkg-deb -c lists the expected files, the configuration is a conffile
// (kept on upgrade), and the postinst creates the helexa user.
func TestPackageDeb(t *testing.T) {
	debs := packages(t, "helexa_*.deb", 2)
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	for _, deb := range debs {
		hasAll(t, deb, "dpkg-deb -c", run(t, "dpkg-deb", "-c", deb), wantFiles, func(line string) string {
			f := strings.Fields(line)
			if len(f) < 6 {
				return ""
			}
			return strings.TrimPrefix(f[5], ".")
		})
		ctl := t.TempDir()
		run(t, "dpkg-deb", "-e", deb, ctl)
		conf, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
		hasAll(t, deb, "conffiles", string(conf), wantConfig, strings.TrimSpace)
		post, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
		if !strings.Contains(string(post), "useradd --system") {
			t.Errorf("%s: postinst does not create the helexa user", deb)
		}
	}
}

// rpm -qlp lists the expected files, rpm -qcp the configuration, and the
// post-install script creates the helexa user.
func TestPackageRpm(t *testing.T) {
	rpms := packages(t, "helexa-*.rpm", 2)
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (apt-get install rpm)")
	}
	for _, p := range rpms {
		hasAll(t, p, "rpm -qlp", run(t, "rpm", "-qlp", p), wantFiles, strings.TrimSpace)
		hasAll(t, p, "rpm -qcp", run(t, "rpm", "-qcp", p), wantConfig, strings.TrimSpace)
		if !strings.Contains(run(t, "rpm", "-qp", "--scripts", p), "useradd --system") {
			t.Errorf("%s: no post-install script creating the helexa user", p)
		}
	}
}
