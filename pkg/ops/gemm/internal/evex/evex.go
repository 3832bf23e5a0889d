// Package evex encodes the 512-bit EVEX instructions of map 0F38 that Go's
// assembler has no mnemonic for (the AVX512_BF16 ones), as the bytes
// gen_kernels.go writes into the kernels. It is a package of its own so
// that its encodings can be tested against another assembler.
package evex

import (
	"fmt"
	"strings"
)

// Op is an EVEX.512.<pp>.0F38.W0 instruction taking "Zdst, Zsrc1, src2" in
// Intel's operand order (BcstY: its EVEX.256 form on ymm registers).
type Op struct {
	Name   string
	opcode byte
	pp     byte // implied prefix: 1 66, 2 F3, 3 F2
}

// The instructions the bfloat16 kernels use.
var (
	// DPBF16PS adds to each float32 lane of dst the two products of
	// the bfloat16 pairs in that lane of src1 and src2.
	DPBF16PS = Op{Name: "VDPBF16PS", opcode: 0x52, pp: 2}
	// CVTNE2PS2BF16 rounds the 16 float32 values of src2 (lower half
	// of dst) and of src1 (upper half) to bfloat16, to nearest even.
	CVTNE2PS2BF16 = Op{Name: "VCVTNE2PS2BF16", opcode: 0x72, pp: 3}
)

// gpr are the general-purpose registers by their x86 numbers, as Go's
// assembler names them.
var gpr = [16]string{"AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

// Mem is a memory operand, Disp(Base)(Index*Scale) in Go's syntax. Index
// is ignored when Scale is 0.
type Mem struct {
	Base, Index string
	Scale, Disp int
}

// Go returns m in Go's assembler syntax.
func (m Mem) Go() string {
	var s strings.Builder
	if m.Disp != 0 {
		fmt.Fprint(&s, m.Disp)
	}
	fmt.Fprintf(&s, "(%s)", m.Base)
	if m.Scale != 0 {
		fmt.Fprintf(&s, "(%s*%d)", m.Index, m.Scale)
	}
	return s.String()
}

// regNum returns the x86 number of the general-purpose register name.
func regNum(name string) (int, error) {
	for i, r := range gpr {
		if r == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no register %q", name)
}

// checkZ fails unless each of zs is a zmm register number.
func checkZ(zs ...int) error {
	for _, z := range zs {
		if z < 0 || z > 31 {
			return fmt.Errorf("no register Z%d", z)
		}
	}
	return nil
}

// inv returns bit of r inverted, as EVEX stores register extensions.
func inv(r, bit int) byte { return byte(^r>>bit) & 1 }

// Vector lengths, EVEX.L'L.
const (
	len256 = 1
	len512 = 2
)

// prefix returns the four EVEX prefix bytes for dst in ModRM.reg, src1 in
// vvvv, and x and b as the X and B extension sources (bit 4 and bit 3 of
// ModRM.rm's register for a register operand, bit 3 of index and base for
// memory), with the vector length ll and the broadcast bit bcst.
func (op Op) prefix(dst, src1 int, x, b byte, ll byte, bcst bool) []byte {
	var bit byte
	if bcst {
		bit = 1
	}
	return []byte{
		0x62,
		inv(dst, 3)<<7 | x<<6 | b<<5 | inv(dst, 4)<<4 | 0x2, // R X B R' 00 mm=10 (0F38)
		byte(^src1&15)<<3 | 0x4 | op.pp,                     // W=0, vvvv, 1, pp
		ll<<5 | bit<<4 | inv(src1, 4)<<3,                    // z=0, L'L, b, V', aaa=0 (no mask)
		op.opcode,
	}
}

// Reg returns the encoding of "op Zdst, Zsrc1, Zsrc2".
func (op Op) Reg(dst, src1, src2 int) ([]byte, error) {
	if err := checkZ(dst, src1, src2); err != nil {
		return nil, fmt.Errorf("%s: %w", op.Name, err)
	}
	enc := op.prefix(dst, src1, inv(src2, 4), inv(src2, 3), len512, false)
	return append(enc, 0xc0|byte(dst&7)<<3|byte(src2&7)), nil
}

// Bcst returns the encoding of "op Zdst, Zsrc1, m32bcst": the 32-bit value
// at m broadcast to all 16 lanes ({1to16}). Its 8-bit displacements are
// scaled by the 4 bytes of the element (EVEX's disp8*N); others take 32
// bits.
func (op Op) Bcst(dst, src1 int, m Mem) ([]byte, error) {
	enc, err := op.bcst(dst, src1, m, len512)
	if err != nil {
		return nil, fmt.Errorf("%s Z%d, Z%d, %s: %w", op.Name, dst, src1, m.Go(), err)
	}
	return enc, nil
}

// BcstY is Bcst on ymm registers: "op Ydst, Ysrc1, m32bcst" ({1to8}).
func (op Op) BcstY(dst, src1 int, m Mem) ([]byte, error) {
	enc, err := op.bcst(dst, src1, m, len256)
	if err != nil {
		return nil, fmt.Errorf("%s Y%d, Y%d, %s: %w", op.Name, dst, src1, m.Go(), err)
	}
	return enc, nil
}

// bcst encodes the broadcast form with vector length ll.
func (op Op) bcst(dst, src1 int, m Mem, ll byte) ([]byte, error) {
	if err := checkZ(dst, src1); err != nil {
		return nil, err
	}
	base, err := regNum(m.Base)
	if err != nil {
		return nil, err
	}
	index, ss := 4, byte(0) // 4 in SIB.index: none
	if m.Scale != 0 {
		if index, err = regNum(m.Index); err != nil {
			return nil, err
		}
		if index == 4 {
			return nil, fmt.Errorf("SP cannot be an index")
		}
		switch m.Scale {
		case 1, 2, 4, 8:
			ss = map[int]byte{1: 0, 2: 1, 4: 2, 8: 3}[m.Scale]
		default:
			return nil, fmt.Errorf("scale %d", m.Scale)
		}
	}
	const n = 4 // disp8 is in units of the broadcast element
	var mod byte
	var disp []byte
	switch {
	case m.Disp == 0 && base&7 != 5: // BP and R13 have no form without displacement
	case m.Disp%n == 0 && m.Disp/n >= -128 && m.Disp/n <= 127:
		mod, disp = 1, []byte{byte(int8(m.Disp / n))}
	default:
		d := uint32(int32(m.Disp))
		if int(int32(m.Disp)) != m.Disp {
			return nil, fmt.Errorf("displacement %d over 32 bits", m.Disp)
		}
		mod, disp = 2, []byte{byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)}
	}
	enc := op.prefix(dst, src1, inv(index, 3), inv(base, 3), ll, true)
	reg := byte(dst&7) << 3
	if m.Scale == 0 && base&7 != 4 { // SP and R12 as a base need a SIB byte
		enc = append(enc, mod<<6|reg|byte(base&7))
	} else {
		enc = append(enc, mod<<6|reg|4, ss<<6|byte(index&7)<<3|byte(base&7))
	}
	return append(enc, disp...), nil
}
