package preprocess

// libjpeg-turbo's block smoothing (jdcoefct.c), which Pillow's decoder
// applies to a progressive JPEG whose scans stop before every low
// coefficient is complete (a file cut short of its refinement scans):
// coefficients 1 to 9 (zigzag) still zero and not fully known are
// estimated from the DC values of the 5x5 blocks around, and when no AC
// data at all is known, the DC itself is interpolated. Files whose scans
// complete are not smoothed. Greyscale cut files match Pillow exactly
// (fixtures); colour ones with 2x2 luma sampling still differ by up to a
// few levels in some blocks of the row where the data ran out.

// smoothedCoefs is how many leading coefficients the smoothing tracks.
const smoothedCoefs = 10

// smoothPos is the natural-order position of zigzag coefficients 1 to 9.
var smoothPos = [smoothedCoefs]int{0, 1, 8, 16, 9, 2, 3, 10, 17, 24}

// trackBits updates the components' coefficient bits for scan number
// scans, as libjpeg's progressive decoder does when a scan starts.
func (d *jpegDecoder) trackBits(s *jpegScan, scans int) {
	for _, c := range s.comps {
		for k := min(s.ss, 1); k <= max(s.se, smoothedCoefs-1) && k < smoothedCoefs; k++ {
			c.prevBits[k] = 0
			if scans > 1 {
				c.prevBits[k] = c.bits[k]
			}
		}
		for k := s.ss; k <= s.se && k < smoothedCoefs; k++ {
			c.bits[k] = s.al
		}
	}
}

// smoothing returns the latched coefficient bits of each component (now
// and before the latest scan) when block smoothing applies, else nil.
func (d *jpegDecoder) smoothing() (latch, prev [][smoothedCoefs]int) {
	if !d.progressive {
		return nil, nil
	}
	useful := false
	latch, prev = make([][smoothedCoefs]int, len(d.comps)), make([][smoothedCoefs]int, len(d.comps))
	for ci := range d.comps {
		c := &d.comps[ci]
		for _, p := range smoothPos {
			if c.qt[p] == 0 {
				return nil, nil
			}
		}
		if c.bits[0] < 0 {
			return nil, nil
		}
		latch[ci][0] = c.bits[0]
		for k := 1; k < smoothedCoefs; k++ {
			prev[ci][k] = -1
			if d.scans > 1 {
				prev[ci][k] = c.prevBits[k]
			}
			latch[ci][k] = c.bits[k]
			useful = useful || c.bits[k] != 0
		}
	}
	if !useful {
		return nil, nil
	}
	return latch, prev
}

// smoothedLoader returns the band loader that IDCTs stored coefficients
// after block smoothing with the latched bits.
func (d *jpegDecoder) smoothedLoader(latch, prev [][smoothedCoefs]int) jpegBandLoader {
	var work [64]int16
	return func(b, ci int, slot []uint8, stride int) error {
		c := &d.comps[ci]
		// Below the MCU row where the latest scan ran out, the bits from
		// before it.
		bits := &latch[ci]
		if b > d.lastGood {
			bits = &prev[ci]
		}
		changeDC := true
		for k := 1; k < smoothedCoefs; k++ {
			changeDC = changeDC && bits[k] == -1
		}
		q := func(k int) int64 { return int64(c.qt[smoothPos[k]]) }
		// libjpeg's geometry: block rows of this MCU row, the image's
		// block rows as it counts them, the real width in blocks.
		heightBlocks := ((d.height*c.v+d.vmax-1)/d.vmax + 7) / 8
		widthBlocks := ((d.width*c.h+d.hmax-1)/d.hmax + 7) / 8
		blockRows := c.v
		if b == d.mcusY-1 {
			if blockRows = heightBlocks % c.v; blockRows == 0 {
				blockRows = c.v
			}
		}
		imageRows := blockRows * d.mcusY
		dc := func(r, x int) int {
			if c.coef == nil || c.coef[r] == nil {
				return 0
			}
			return int(c.coef[r][x*64])
		}
		for br := 0; br < blockRows; br++ {
			row := b*c.v + br
			imageRow := b*blockRows + br
			rows := [5]int{row, row, row, row, row} // two above, this, two below
			if imageRow > 0 {
				rows[1] = row - 1
			}
			rows[0] = rows[1]
			if imageRow > 1 {
				rows[0] = row - 2
			}
			if imageRow < imageRows-1 {
				rows[3] = row + 1
			}
			rows[4] = rows[3]
			if imageRow < imageRows-2 {
				rows[4] = row + 2
			}
			// DC[i][j]: row i (0 two above) and column j (2 this block).
			var DC [5][5]int
			for i, r := range rows {
				v := dc(r, 0)
				DC[i] = [5]int{v, v, v, v, v}
			}
			last := widthBlocks - 1
			for x := 0; x < c.bw; x++ {
				clear(work[:])
				if c.coef != nil && c.coef[row] != nil {
					copy(work[:], c.coef[row][x*64:][:64])
				}
				if x == 0 && x < last {
					for i, r := range rows {
						DC[i][3], DC[i][4] = dc(r, 1), dc(r, 1)
					}
				}
				if x+1 < last {
					for i, r := range rows {
						DC[i][4] = dc(r, x+2)
					}
				}
				smoothBlock(&work, bits, changeDC, q, &DC)
				idctBlock(work[:], c.qt, slot[br*8*stride+x*8:], stride)
				for i := range DC {
					copy(DC[i][:4], DC[i][1:])
				}
			}
		}
		return nil
	}
}

// smoothWeights are libjpeg-turbo's 5x5 DC weights for each estimated
// coefficient (zigzag 1 to 9), with DC interpolation (changeDC) and
// without; a nil entry is not estimated in that mode.
var smoothWeights = [2][smoothedCoefs]*[5][5]int{
	{ // changeDC false
		1: {{}, {}, {-7, 50, 0, -50, 7}, {}, {}},
		2: {{0, 0, -7, 0, 0}, {0, 0, 50, 0, 0}, {}, {0, 0, -50, 0, 0}, {0, 0, 7, 0, 0}},
		3: {{0, 0, -1, 0, 0}, {0, 0, 13, 0, 0}, {0, 0, -24, 0, 0}, {0, 0, 13, 0, 0}, {0, 0, -1, 0, 0}},
		4: {{0, -1, 0, 1, 0}, {-1, 10, 0, -10, 1}, {}, {1, -10, 0, 10, -1}, {0, 1, 0, -1, 0}},
		5: {{}, {}, {-1, 13, -24, 13, -1}, {}, {}},
	},
	{ // changeDC true
		1: {{-1, -1, 0, 1, 1}, {-3, 13, 0, -13, 3}, {-3, 38, 0, -38, 3}, {-3, 13, 0, -13, 3}, {-1, -1, 0, 1, 1}},
		2: {{-1, -3, -3, -3, -1}, {-1, 13, 38, 13, -1}, {}, {1, -13, -38, -13, 1}, {1, 3, 3, 3, 1}},
		3: {{0, 0, 1, 0, 0}, {0, 2, 7, 2, 0}, {0, -5, -14, -5, 0}, {0, 2, 7, 2, 0}, {0, 0, 1, 0, 0}},
		4: {{-1, 0, 0, 0, 1}, {0, 9, 0, -9, 0}, {}, {0, -9, 0, 9, 0}, {1, 0, 0, 0, -1}},
		5: {{}, {0, 2, -5, 2, 0}, {1, 7, -14, 7, 1}, {0, 2, -5, 2, 0}, {}},
		6: {{}, {0, 1, 0, -1, 0}, {0, 2, 0, -2, 0}, {0, 1, 0, -1, 0}, {}},
		7: {{}, {0, 1, -3, 1, 0}, {}, {0, -1, 3, -1, 0}, {}},
		8: {{}, {0, 1, 0, -1, 0}, {0, -3, 0, 3, 0}, {0, 1, 0, -1, 0}, {}},
		9: {{}, {0, 1, 2, 1, 0}, {}, {0, -1, -2, -1, 0}, {}},
	},
}

// smoothDC is the DC interpolation kernel (its weights sum to 256).
var smoothDC = [5][5]int{
	{-2, -6, -8, -6, -2}, {-6, 6, 42, 6, -6}, {-8, 42, 152, 42, -8}, {-6, 6, 42, 6, -6}, {-2, -6, -8, -6, -2},
}

// smoothBlock estimates the block's missing low coefficients in place.
func smoothBlock(work *[64]int16, bits *[smoothedCoefs]int, changeDC bool, q func(int) int64, DC *[5][5]int) {
	mode := 0
	if changeDC {
		mode = 1
	}
	q00 := q(0)
	weigh := func(w *[5][5]int) int64 {
		var s int64
		for i := range w {
			for j, v := range w[i] {
				s += int64(v * DC[i][j])
			}
		}
		return s
	}
	for k := 1; k < smoothedCoefs; k++ {
		w := smoothWeights[mode][k]
		al := bits[k]
		if w == nil || al == 0 || work[smoothPos[k]] != 0 {
			continue
		}
		work[smoothPos[k]] = int16(estimate(q00*weigh(w), q(k), al))
	}
	if changeDC {
		work[0] = int16(estimate(q00*weigh(&smoothDC), q00, 0))
	}
}

// estimate is libjpeg's rounded num/(256*qk), capped below 2^al when the
// coefficient is known to al bits.
func estimate(num, qk int64, al int) int {
	neg := num < 0
	if neg {
		num = -num
	}
	pred := int((qk<<7 + num) / (qk << 8))
	if al > 0 && pred >= 1<<al {
		pred = 1<<al - 1
	}
	if neg {
		return -pred
	}
	return pred
}
