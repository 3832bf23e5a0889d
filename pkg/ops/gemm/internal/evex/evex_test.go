package evex

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// encoding is one instruction with its Go-side encoding and its AT&T
// syntax for GNU as.
type encoding struct {
	att string
	enc func() ([]byte, error)
}

// atReg returns the AT&T name of a general-purpose register.
func atReg(name string) string {
	if strings.HasPrefix(name, "R") {
		return "%" + strings.ToLower(name)
	}
	return "%r" + strings.ToLower(name)
}

// att returns m in AT&T syntax.
func (m Mem) att() string {
	s := fmt.Sprintf("%d(%s", m.Disp, atReg(m.Base))
	if m.Scale != 0 {
		s += fmt.Sprintf(",%s,%d", atReg(m.Index), m.Scale)
	}
	return s + ")"
}

func bcstCase(op Op, dst, src1 int, m Mem) encoding {
	return encoding{
		att: fmt.Sprintf("%s %s{1to16}, %%zmm%d, %%zmm%d", strings.ToLower(op.Name), m.att(), src1, dst),
		enc: func() ([]byte, error) { return op.Bcst(dst, src1, m) },
	}
}

func bcstYCase(op Op, dst, src1 int, m Mem) encoding {
	return encoding{
		att: fmt.Sprintf("%s %s{1to8}, %%ymm%d, %%ymm%d", strings.ToLower(op.Name), m.att(), src1, dst),
		enc: func() ([]byte, error) { return op.BcstY(dst, src1, m) },
	}
}

func regCase(op Op, dst, src1, src2 int) encoding {
	return encoding{
		att: fmt.Sprintf("%s %%zmm%d, %%zmm%d, %%zmm%d", strings.ToLower(op.Name), src2, src1, dst),
		enc: func() ([]byte, error) { return op.Reg(dst, src1, src2) },
	}
}

// cases covers every base and index register, every scale, displacements
// with no byte, a compressed byte, and 32 bits (not a multiple of 4, or
// out of the byte's range), registers in each quarter of Z0..Z31, and
// the 512- and 256-bit broadcast forms.
func cases() []encoding {
	var cs []encoding
	disps := []int{0, 4, 24, -4, 508, 512, -512, -516, 3, 0x12345}
	zs := []int{0, 7, 8, 15, 16, 23, 24, 31}
	for b := range gpr {
		for i, d := range disps {
			z1, z2 := zs[(b+i)%len(zs)], zs[(b+2*i+3)%len(zs)]
			cs = append(cs, bcstCase(DPBF16PS, z1, z2, Mem{Base: gpr[b], Disp: d}))
			x := (b + i) % len(gpr)
			if x == 4 {
				x = 6
			}
			cs = append(cs, bcstCase(DPBF16PS, z2, z1, Mem{Base: gpr[b], Index: gpr[x], Scale: 1 << (i % 4), Disp: d}))
			cs = append(cs, bcstYCase(DPBF16PS, z1, z2, Mem{Base: gpr[b], Index: gpr[x], Scale: 1 << (3 - i%4), Disp: d}))
		}
	}
	for _, op := range []Op{DPBF16PS, CVTNE2PS2BF16} {
		for i, z := range zs {
			cs = append(cs, regCase(op, z, zs[(i+3)%len(zs)], zs[(i+5)%len(zs)]))
		}
	}
	return cs
}

// TestKnown checks encodings that GNU as 2.40 gave.
func TestKnown(t *testing.T) {
	tests := []struct {
		enc  func() ([]byte, error)
		want []byte
	}{
		{func() ([]byte, error) { return DPBF16PS.Bcst(2, 1, Mem{Base: "BX", Disp: 0x40}) }, []byte{0x62, 0xf2, 0x76, 0x58, 0x52, 0x53, 0x10}},
		{func() ([]byte, error) { return DPBF16PS.BcstY(2, 1, Mem{Base: "BX", Disp: 0x40}) }, []byte{0x62, 0xf2, 0x76, 0x38, 0x52, 0x53, 0x10}},
		{func() ([]byte, error) {
			return DPBF16PS.Bcst(27, 30, Mem{Base: "BX", Index: "SI", Scale: 1, Disp: 0x18})
		}, []byte{0x62, 0x62, 0x0e, 0x50, 0x52, 0x5c, 0x33, 0x06}},
		{func() ([]byte, error) { return DPBF16PS.Bcst(9, 17, Mem{Base: "R13"}) }, []byte{0x62, 0x52, 0x76, 0x50, 0x52, 0x4d, 0x00}},
		{func() ([]byte, error) { return DPBF16PS.Reg(0, 29, 28) }, []byte{0x62, 0x92, 0x16, 0x40, 0x52, 0xc4}},
		{func() ([]byte, error) { return CVTNE2PS2BF16.Reg(2, 31, 3) }, []byte{0x62, 0xf2, 0x07, 0x40, 0x72, 0xd3}},
	}
	for i, tt := range tests {
		got, err := tt.enc()
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("case %d: % x, %v; want % x", i, got, err, tt.want)
		}
	}
}

// TestAgainstGNUAs assembles every case with GNU as and compares the bytes.
func TestAgainstGNUAs(t *testing.T) {
	for _, tool := range []string{"as", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	cs := cases()
	var src strings.Builder
	var want [][]byte
	for _, c := range cs {
		enc, err := c.enc()
		if err != nil {
			t.Fatalf("%s: %v", c.att, err)
		}
		want = append(want, enc)
		src.WriteString(c.att + "\n")
	}
	dir := t.TempDir()
	in, obj, bin := filepath.Join(dir, "x.s"), filepath.Join(dir, "x.o"), filepath.Join(dir, "x.bin")
	if err := os.WriteFile(in, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"as", "--64", "-o", obj, in}, {"objcopy", "-O", "binary", "-j", ".text", obj, bin}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	got, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if len(got) < len(w) || !bytes.Equal(got[:len(w)], w) {
			t.Fatalf("%s: encoded % x, as gives % x", cs[i].att, w, got[:min(len(got), len(w)+4)])
		}
		got = got[len(w):]
	}
	if len(got) != 0 {
		t.Fatalf("as wrote %d bytes more", len(got))
	}
}

func TestErrors(t *testing.T) {
	for _, f := range []func() ([]byte, error){
		func() ([]byte, error) { return DPBF16PS.Reg(32, 0, 0) },
		func() ([]byte, error) { return DPBF16PS.Bcst(0, -1, Mem{Base: "BX"}) },
		func() ([]byte, error) { return DPBF16PS.Bcst(0, 0, Mem{Base: "EBX"}) },
		func() ([]byte, error) { return DPBF16PS.Bcst(0, 0, Mem{Base: "BX", Index: "SP", Scale: 1}) },
		func() ([]byte, error) { return DPBF16PS.Bcst(0, 0, Mem{Base: "BX", Index: "SI", Scale: 3}) },
		func() ([]byte, error) { return DPBF16PS.Bcst(0, 0, Mem{Base: "BX", Disp: 1 << 40}) },
	} {
		if enc, err := f(); err == nil {
			t.Errorf("encoded % x, want an error", enc)
		}
	}
}

func TestMemGo(t *testing.T) {
	for _, tt := range []struct {
		m    Mem
		want string
	}{
		{Mem{Base: "BX"}, "(BX)"},
		{Mem{Base: "BX", Disp: 24}, "24(BX)"},
		{Mem{Base: "BX", Index: "DX", Scale: 2, Disp: -4}, "-4(BX)(DX*2)"},
	} {
		if got := tt.m.Go(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.m, got, tt.want)
		}
	}
}
