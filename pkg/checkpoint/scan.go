package checkpoint

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Bounds on a pickle beyond its length. gopickle allocates for each opcode
// (a MARK costs it about 300 bytes, a memoized dict over 200), so the byte
// count alone, after a zip entry's expansion, would let a few KB cost
// gigabytes; with these, the worst pickle measured costs about 130 MB.
// Python's pickler recurses once per nesting level (limit 1000) and
// batches SETITEMS by 1000, so files it writes stay far inside them: a
// state dict takes 30 opcodes per tensor, a training checkpoint with an
// EMA copy and Adam's state 96, 154,000 for Res2Net-101's 1,600 tensors.
const (
	// maxPickleOps bounds the opcodes of one pickle.
	maxPickleOps = 1 << 20
	// maxStackDepth bounds the items on the unpickler's stack, all mark
	// frames together.
	maxStackDepth = 1 << 19
	// maxMarkDepth bounds the MARKs open at once.
	maxMarkDepth = 1 << 12
	// maxNumberLen bounds the text of an INT, LONG or FLOAT and the bytes
	// of a LONG4: big.Int.SetString and gopickle's LONG decoding take time
	// quadratic in it.
	maxNumberLen = 4096
)

// Pickle opcode argument kinds, as documented in Python's pickletools.
const (
	argNone   = iota + 1
	argFixed1 // 1 byte
	argFixed2
	argFixed4
	argFixed8
	argLine   // text up to '\n'
	argLine2  // two lines (GLOBAL, INST)
	argLen1   // 1-byte length, then that many bytes
	argLen4   // 4-byte little-endian length
	argLen8   // 8-byte little-endian length
	argFrame  // 8-byte length of the frame that follows (FRAME)
	argNumber // a line holding a number (INT, LONG, FLOAT)
)

// Effects on the unpickler's mark stack.
const (
	markNone    = iota
	markPush    // MARK
	markPop     // pops the items above the innermost mark and the mark
	markPopOrOp // POP: the top item, or the mark when the frame is empty
)

// opInfo describes one opcode for the scan: its argument and its effect on
// the stack (after markPop, if any, pop items leave the enclosing frame).
type opInfo struct {
	name      string
	arg       uint8
	mark      uint8
	pop, push int8
}

// pickleOps maps every opcode of protocols 0 to 5 to its description; a
// zero arg means the byte is not an opcode.
var pickleOps = func() (t [256]opInfo) {
	def := func(op byte, name string, arg, mark uint8, pop, push int8) {
		t[op] = opInfo{name: name, arg: arg, mark: mark, pop: pop, push: push}
	}
	def('(', "MARK", argNone, markPush, 0, 0)
	def('.', "STOP", argNone, markNone, 1, 0)
	def('0', "POP", argNone, markPopOrOp, 1, 0)
	def('1', "POP_MARK", argNone, markPop, 0, 0)
	def('2', "DUP", argNone, markNone, 1, 2)
	def('N', "NONE", argNone, markNone, 0, 1)
	def('Q', "BINPERSID", argNone, markNone, 1, 1)
	def('R', "REDUCE", argNone, markNone, 2, 1)
	def('a', "APPEND", argNone, markNone, 2, 1)
	def('b', "BUILD", argNone, markNone, 2, 1)
	def('d', "DICT", argNone, markPop, 0, 1)
	def('e', "APPENDS", argNone, markPop, 1, 1)
	def('l', "LIST", argNone, markPop, 0, 1)
	def('o', "OBJ", argNone, markPop, 0, 1)
	def('s', "SETITEM", argNone, markNone, 3, 1)
	def('t', "TUPLE", argNone, markPop, 0, 1)
	def('u', "SETITEMS", argNone, markPop, 1, 1)
	def('}', "EMPTY_DICT", argNone, markNone, 0, 1)
	def(']', "EMPTY_LIST", argNone, markNone, 0, 1)
	def(')', "EMPTY_TUPLE", argNone, markNone, 0, 1)
	def(0x81, "NEWOBJ", argNone, markNone, 2, 1)
	def(0x85, "TUPLE1", argNone, markNone, 1, 1)
	def(0x86, "TUPLE2", argNone, markNone, 2, 1)
	def(0x87, "TUPLE3", argNone, markNone, 3, 1)
	def(0x88, "NEWTRUE", argNone, markNone, 0, 1)
	def(0x89, "NEWFALSE", argNone, markNone, 0, 1)
	def(0x8f, "EMPTY_SET", argNone, markNone, 0, 1)
	def(0x90, "ADDITEMS", argNone, markPop, 1, 1)
	def(0x91, "FROZENSET", argNone, markPop, 0, 1)
	def(0x92, "NEWOBJ_EX", argNone, markNone, 3, 1)
	def(0x93, "STACK_GLOBAL", argNone, markNone, 2, 1)
	def(0x94, "MEMOIZE", argNone, markNone, 1, 1)
	def(0x97, "NEXT_BUFFER", argNone, markNone, 0, 1)
	def(0x98, "READONLY_BUFFER", argNone, markNone, 1, 1)

	def('F', "FLOAT", argNumber, markNone, 0, 1)
	def('I', "INT", argNumber, markNone, 0, 1)
	def('L', "LONG", argNumber, markNone, 0, 1)
	def('P', "PERSID", argLine, markNone, 0, 1)
	def('S', "STRING", argLine, markNone, 0, 1)
	def('V', "UNICODE", argLine, markNone, 0, 1)
	def('g', "GET", argLine, markNone, 0, 1)
	def('p', "PUT", argLine, markNone, 1, 1)
	def('c', "GLOBAL", argLine2, markNone, 0, 1)
	def('i', "INST", argLine2, markPop, 0, 1)

	def('K', "BININT1", argFixed1, markNone, 0, 1)
	def('h', "BINGET", argFixed1, markNone, 0, 1)
	def('q', "BINPUT", argFixed1, markNone, 1, 1)
	def(0x80, "PROTO", argFixed1, markNone, 0, 0)
	def(0x82, "EXT1", argFixed1, markNone, 0, 1)
	def('M', "BININT2", argFixed2, markNone, 0, 1)
	def(0x83, "EXT2", argFixed2, markNone, 0, 1)
	def('J', "BININT", argFixed4, markNone, 0, 1)
	def('j', "LONG_BINGET", argFixed4, markNone, 0, 1)
	def('r', "LONG_BINPUT", argFixed4, markNone, 1, 1)
	def(0x84, "EXT4", argFixed4, markNone, 0, 1)
	def('G', "BINFLOAT", argFixed8, markNone, 0, 1)
	def(0x95, "FRAME", argFrame, markNone, 0, 0)

	def('U', "SHORT_BINSTRING", argLen1, markNone, 0, 1)
	def('C', "SHORT_BINBYTES", argLen1, markNone, 0, 1)
	def(0x8a, "LONG1", argLen1, markNone, 0, 1)
	def(0x8c, "SHORT_BINUNICODE", argLen1, markNone, 0, 1)
	def('T', "BINSTRING", argLen4, markNone, 0, 1)
	def('X', "BINUNICODE", argLen4, markNone, 0, 1)
	def('B', "BINBYTES", argLen4, markNone, 0, 1)
	def(0x8b, "LONG4", argLen4, markNone, 0, 1)
	def(0x8d, "BINUNICODE8", argLen8, markNone, 0, 1)
	def(0x8e, "BINBYTES8", argLen8, markNone, 0, 1)
	def(0x96, "BYTEARRAY8", argLen8, markNone, 0, 1)
	return t
}()

// pickleScan copies one pickle out of its input while checking it.
type pickleScan struct {
	r     *bufio.Reader
	limit int64  // bytes the input can still hold, counted from the pickle's start
	out   []byte // the pickle so far
	op    opInfo // the opcode being scanned
	at    int    // its offset in out
	// frameEnd is the offset in out where the last FRAME ends.
	frameEnd int64
	ops      int
	// cur counts the items above the innermost mark, marks the items of
	// each enclosing mark frame, depth all items.
	cur, depth int
	marks      []int
}

// readPickle copies one pickle (up to and including its STOP opcode) from r
// and checks it before gopickle sees it: every length argument against
// limit, the number of bytes the input can still hold (gopickle allocates
// a length before reading the data, so a FRAME could otherwise demand
// 550 GB), every FRAME inside the pickle, the stack effect of every opcode,
// and the bounds above. After this scan every allocation gopickle makes is
// bounded by the pickle's size and the opcode count.
func readPickle(r *bufio.Reader, limit int64) ([]byte, error) {
	s := &pickleScan{r: r, limit: limit}
	for {
		s.at = len(s.out)
		b, err := s.take(1)
		if err != nil {
			return nil, err
		}
		s.op = pickleOps[b[0]]
		if s.op.arg == 0 {
			return nil, fmt.Errorf("%w: invalid pickle opcode 0x%02x at byte %d", ErrCorrupt, b[0], s.at)
		}
		if s.ops++; s.ops > maxPickleOps {
			return nil, fmt.Errorf("%w: pickle of more than %d opcodes", ErrUnsupported, maxPickleOps)
		}
		if err := s.arg(); err != nil {
			return nil, err
		}
		if err := s.stack(); err != nil {
			return nil, err
		}
		if s.op.name == "STOP" {
			if s.frameEnd > int64(len(s.out)) {
				return nil, fmt.Errorf("%w: the pickle stops at byte %d inside a FRAME that runs to byte %d",
					ErrCorrupt, s.at, s.frameEnd)
			}
			return s.out, nil
		}
	}
}

// take copies the next n bytes, which must fit in the limit.
func (s *pickleScan) take(n int64) ([]byte, error) {
	if left := s.limit - int64(len(s.out)); n < 0 || n > left {
		if n <= 8 { // an opcode or a fixed-size field
			return nil, fmt.Errorf("%w: the data ends inside a pickle (at byte %d)", ErrTruncated, s.at)
		}
		return nil, fmt.Errorf("%w: %s at byte %d of a pickle claims %d bytes, %d remain",
			ErrTruncated, s.op.name, s.at, uint64(n), max(left, 0))
	}
	start := len(s.out)
	s.out = append(s.out, make([]byte, n)...)
	if _, err := io.ReadFull(s.r, s.out[start:]); err != nil {
		return nil, truncated(err, "inside a pickle")
	}
	return s.out[start:], nil
}

// line copies text up to and including '\n', at most maxLen bytes of it.
func (s *pickleScan) line(maxLen int) error {
	for n := 0; ; n++ {
		if int64(len(s.out)) >= s.limit {
			return fmt.Errorf("%w: the data ends inside a pickle (in the text of %s at byte %d)", ErrTruncated, s.op.name, s.at)
		}
		if n > maxLen {
			return fmt.Errorf("%w: %s at byte %d has more than %d characters", ErrUnsupported, s.op.name, s.at, maxLen)
		}
		b, err := s.r.ReadByte()
		if err != nil {
			return truncated(err, "inside a pickle")
		}
		s.out = append(s.out, b)
		if b == '\n' {
			return nil
		}
	}
}

// length reads a little-endian length field of n bytes.
func (s *pickleScan) length(n int) (int64, error) {
	b, err := s.take(int64(n))
	if err != nil {
		return 0, err
	}
	var pad [8]byte
	copy(pad[:], b)
	// A length above MaxInt64 turns negative, which take rejects.
	return int64(binary.LittleEndian.Uint64(pad[:])), nil
}

// arg copies the current opcode's argument.
func (s *pickleScan) arg() error {
	switch kind := s.op.arg; kind {
	case argFixed1, argFixed2, argFixed4, argFixed8:
		_, err := s.take(int64(1) << (kind - argFixed1))
		return err
	case argLine:
		return s.line(int(s.limit))
	case argNumber:
		return s.line(maxNumberLen)
	case argLine2:
		if err := s.line(int(s.limit)); err != nil {
			return err
		}
		return s.line(int(s.limit))
	case argLen1, argLen4, argLen8:
		n, err := s.length([]int{1, 4, 8}[kind-argLen1])
		if err != nil {
			return err
		}
		if s.op.name == "LONG4" && n > maxNumberLen {
			return fmt.Errorf("%w: LONG4 at byte %d of %d bytes (at most %d are read)", ErrUnsupported, s.at, n, maxNumberLen)
		}
		_, err = s.take(n)
		return err
	case argFrame:
		if s.frameEnd > int64(s.at) {
			return fmt.Errorf("%w: FRAME at byte %d inside the frame that runs to byte %d", ErrCorrupt, s.at, s.frameEnd)
		}
		n, err := s.length(8)
		if err != nil {
			return err
		}
		if left := s.limit - int64(len(s.out)); n < 0 || n > left {
			return fmt.Errorf("%w: FRAME at byte %d of a pickle claims %d bytes, %d remain", ErrTruncated, s.at, uint64(n), left)
		}
		s.frameEnd = int64(len(s.out)) + n
	}
	return nil
}

// stack applies the current opcode's effect to the simulated stack.
func (s *pickleScan) stack() error {
	op := s.op
	switch op.mark {
	case markPush:
		if len(s.marks) >= maxMarkDepth {
			return fmt.Errorf("%w: more than %d MARKs open at byte %d of a pickle", ErrUnsupported, maxMarkDepth, s.at)
		}
		s.marks = append(s.marks, s.cur)
		s.cur = 0
		return nil
	case markPopOrOp:
		if s.cur == 0 && len(s.marks) > 0 {
			return s.popMark()
		}
	case markPop:
		if err := s.popMark(); err != nil {
			return err
		}
	}
	if int(op.pop) > s.cur {
		return fmt.Errorf("%w: %s at byte %d of a pickle needs %d stack items, %d are there", ErrCorrupt, op.name, s.at, op.pop, s.cur)
	}
	s.cur += int(op.push - op.pop)
	s.depth += int(op.push - op.pop)
	if s.depth > maxStackDepth {
		return fmt.Errorf("%w: more than %d items on the stack at byte %d of a pickle", ErrUnsupported, maxStackDepth, s.at)
	}
	return nil
}

// popMark discards the items above the innermost mark and the mark.
func (s *pickleScan) popMark() error {
	if len(s.marks) == 0 {
		return fmt.Errorf("%w: %s at byte %d of a pickle without a MARK", ErrCorrupt, s.op.name, s.at)
	}
	s.depth -= s.cur
	s.cur = s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	return nil
}
