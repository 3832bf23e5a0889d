package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/res2net/res2net/pkg/registry"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestPageInChromium loads the page in a real headless Chromium, uploads a
// test photo through the file input, and reads the rendered top-5.
func TestPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v (.ci/run installs chromium)", chromiumPath, err)
		}
		t.Skipf("no %s", chromiumPath)
	}
	_, url := newTestServer(t, Options{})
	p := photos(t)[3]
	file, err := filepath.Abs(filepath.Join(photosDir, p.File))
	if err != nil {
		t.Fatal(err)
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitReady(`#model option[value="tiny"]`),
		chromedp.SetUploadFiles(`#file`, []string{file}, chromedp.NodeReady),
		chromedp.WaitVisible(`#results li`),
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#results .label")].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(`#status`))
	if err != nil {
		t.Fatal(err)
	}
	want := registry.Default.Classes[rankOf(referenceLogits(t, p))]
	if title != "res2net" || len(labels) != 5 || labels[0] != want {
		t.Errorf("title %q, rendered labels %q; want 5 with %q first", title, labels, want)
	}
	if !strings.HasPrefix(status, "Took ") || !strings.HasSuffix(status, " ms") {
		t.Errorf("status %q, want the time taken", status)
	}
	t.Logf("%s: %v, %s", p.File, labels, status)
}
