package main

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
)

// repoRoot is where the README's examples run from, relative to this
// package.
const repoRoot = "../../"

// TestReadmeExamples runs every example of the README that uses the tiny
// checkpoint shipped in testdata (`$ res2net ... --weights testdata/tiny/...`
// in a code block) and checks that it prints what the README shows.
func TestReadmeExamples(t *testing.T) {
	f, err := os.Open(repoRoot + "README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type example struct {
		command string
		want    []string
	}
	var examples []example
	var cur *example
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock, cur = !inBlock, nil
		case !inBlock:
		case strings.HasPrefix(line, "$ res2net ") && strings.Contains(line, "--weights testdata/tiny/"):
			examples = append(examples, example{command: strings.TrimPrefix(line, "$ res2net ")})
			cur = &examples[len(examples)-1]
		case strings.HasPrefix(line, "$ "):
			cur = nil
		case cur != nil:
			cur.want = append(cur.want, line)
		}
	}
	if len(examples) < 3 {
		t.Fatalf("%d examples found in the README", len(examples))
	}
	t.Setenv("RES2NET_HOME", t.TempDir())
	for _, ex := range examples {
		t.Run(ex.command, func(t *testing.T) {
			args := strings.Fields(ex.command)
			for i, a := range args {
				if strings.HasPrefix(a, "testdata/") {
					args[i] = repoRoot + a
				}
			}
			ios, out, errOut := testIO("")
			execute(context.Background(), ios, args)
			// The README shows stdout, or stderr for a command that prints
			// only an error.
			got := out.String()
			if got == "" {
				got = errOut.String()
			}
			got = strings.ReplaceAll(got, repoRoot, "")
			if want := strings.Join(ex.want, "\n") + "\n"; !sameOutput(got, want) {
				t.Errorf("res2net %s prints\n%s\nthe README shows\n%s", ex.command, got, want)
			}
		})
	}
}

// sameOutput compares output with the README's, where the free memory of
// the machine it was written on may differ.
func sameOutput(got, want string) bool {
	const avail = "more than the "
	if i, j := strings.Index(got, avail), strings.Index(want, avail); i >= 0 && j >= 0 {
		return got[:i] == want[:j] && strings.HasSuffix(got, want[strings.Index(want[j:], " of memory")+j:])
	}
	return got == want
}
