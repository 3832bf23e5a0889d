package preprocess

// Fixed-point constants of libjpeg's accurate integer IDCT (the
// Loeffler-Ligtenberg-Moschytz algorithm, 13 fractional bits, 2 extra
// bits kept between the passes).
const (
	idctConstBits  = 13
	idctPass1Bits  = 2
	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idctLimit is libjpeg's post-IDCT range limit: indexed by the output
// (before adding 128) masked to 10 bits, so values within [-512, 511] are
// clamped to [0, 255] and larger ones wrap, as in libjpeg.
var idctLimit = func() (t [1024]uint8) {
	for i := range t {
		x := i
		if x >= 512 {
			x -= 1024
		}
		t[i] = clamp255(int32(x + 128))
	}
	return
}()

// idctBlock computes the accurate integer IDCT of one dequantised block
// (natural order) into 8 rows of out, stride apart.
func idctBlock(coef []int16, q *[64]int32, out []uint8, stride int) {
	var ws [64]int32
	for col := 0; col < 8; col++ {
		if coef[8+col] == 0 && coef[16+col] == 0 && coef[24+col] == 0 && coef[32+col] == 0 &&
			coef[40+col] == 0 && coef[48+col] == 0 && coef[56+col] == 0 {
			dc := int32(coef[col]) * q[col] << idctPass1Bits
			for r := 0; r < 8; r++ {
				ws[r*8+col] = dc
			}
			continue
		}
		in := func(r int) int64 { return int64(coef[r*8+col]) * int64(q[r*8+col]) }
		t0, t1, t2, t3, t10, t11, t12, t13 := idct1D(in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7))
		const shift = idctConstBits - idctPass1Bits
		const round = 1 << (shift - 1)
		ws[0*8+col] = int32((t10 + t3 + round) >> shift)
		ws[7*8+col] = int32((t10 - t3 + round) >> shift)
		ws[1*8+col] = int32((t11 + t2 + round) >> shift)
		ws[6*8+col] = int32((t11 - t2 + round) >> shift)
		ws[2*8+col] = int32((t12 + t1 + round) >> shift)
		ws[5*8+col] = int32((t12 - t1 + round) >> shift)
		ws[3*8+col] = int32((t13 + t0 + round) >> shift)
		ws[4*8+col] = int32((t13 - t0 + round) >> shift)
	}
	for r := 0; r < 8; r++ {
		w := ws[r*8 : r*8+8]
		o := out[r*stride : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := idctLimit[((w[0]+(1<<(idctPass1Bits+2)))>>(idctPass1Bits+3))&1023]
			for i := range o {
				o[i] = v
			}
			continue
		}
		t0, t1, t2, t3, t10, t11, t12, t13 := idct1D(int64(w[0]), int64(w[1]), int64(w[2]), int64(w[3]),
			int64(w[4]), int64(w[5]), int64(w[6]), int64(w[7]))
		const shift = idctConstBits + idctPass1Bits + 3
		const round = 1 << (shift - 1)
		o[0] = idctLimit[((t10+t3+round)>>shift)&1023]
		o[7] = idctLimit[((t10-t3+round)>>shift)&1023]
		o[1] = idctLimit[((t11+t2+round)>>shift)&1023]
		o[6] = idctLimit[((t11-t2+round)>>shift)&1023]
		o[2] = idctLimit[((t12+t1+round)>>shift)&1023]
		o[5] = idctLimit[((t12-t1+round)>>shift)&1023]
		o[3] = idctLimit[((t13+t0+round)>>shift)&1023]
		o[4] = idctLimit[((t13-t0+round)>>shift)&1023]
	}
}

// idct1D is the shared even/odd butterfly of both passes; it returns the
// odd-part terms t0..t3 and the even-part terms t10..t13.
func idct1D(i0, i1, i2, i3, i4, i5, i6, i7 int64) (t0, t1, t2, t3, t10, t11, t12, t13 int64) {
	// Even part.
	z1 := (i2 + i6) * fix0_541196100
	t2 = z1 - i6*fix1_847759065
	t3 = z1 + i2*fix0_765366865
	t0 = (i0 + i4) << idctConstBits
	t1 = (i0 - i4) << idctConstBits
	t10, t13 = t0+t3, t0-t3
	t11, t12 = t1+t2, t1-t2

	// Odd part.
	t0, t1, t2, t3 = i7, i5, i3, i1
	z1 = t0 + t3
	z2 := t1 + t2
	z3 := t0 + t2
	z4 := t1 + t3
	z5 := (z3 + z4) * fix1_175875602
	t0 *= fix0_298631336
	t1 *= fix2_053119869
	t2 *= fix3_072711026
	t3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4
	return
}

// jpegBandLoader fills band b (8*v sample rows, stride apart) of
// component ci's samples; emit calls it for every component of a band in
// order.
type jpegBandLoader func(b, ci int, slot []uint8, stride int) error

// emit upsamples and colour-converts the components to what Pillow holds
// after convert("RGB"), row by row into sink. Each component keeps a ring
// of three bands of samples: fancy upsampling reads one chroma row above
// and below, so at most the previous, current and next bands are in use.
func (d *jpegDecoder) emit(sink rowSink, load jpegBandLoader) error {
	w, h := d.width, d.height
	n := len(d.comps)
	const ring = 3
	var loadErr error
	loaded := 0 // bands loaded
	bands := make([][]uint8, n)
	planes := make([]*chroma, n)
	rows, bufs := make([][]uint8, n), make([][]uint8, n)
	for ci := range d.comps {
		c := &d.comps[ci]
		stride := c.bw * 8
		bandRows := 8 * c.v
		bands[ci] = make([]uint8, ring*bandRows*stride)
		planes[ci] = &chroma{w: (w*c.h + d.hmax - 1) / d.hmax, h: (h*c.v + d.vmax - 1) / d.vmax,
			fetch: func(cy int) []uint8 {
				b := cy / bandRows
				for loadErr == nil && loaded <= b {
					for cj := range d.comps {
						cc := &d.comps[cj]
						size := 8 * cc.v * cc.bw * 8
						if loadErr = load(loaded, cj, bands[cj][loaded%ring*size:][:size], cc.bw*8); loadErr != nil {
							break
						}
					}
					loaded++
				}
				return bands[ci][(b%ring*bandRows+cy%bandRows)*stride:][:stride]
			}}
		bufs[ci] = make([]uint8, planes[ci].w*(d.hmax/c.h))
	}
	space := d.colorSpace()
	o := make([]uint8, 4*w)
	cmyk := make([]uint8, 4*w)
	for y := 0; y < h; y++ {
		for ci := range d.comps {
			c := &d.comps[ci]
			rows[ci] = jpegUpsampleRow(planes[ci], d.hmax/c.h, d.vmax/c.v, y, bufs[ci])
		}
		if loadErr != nil {
			return loadErr
		}
		switch space {
		case "L":
			for x, v := range rows[0][:w] {
				o[4*x], o[4*x+1], o[4*x+2] = v, v, v
			}
		case "RGB":
			for x := 0; x < w; x++ {
				o[4*x], o[4*x+1], o[4*x+2] = rows[0][x], rows[1][x], rows[2][x]
			}
		case "YCbCr":
			ycbcrRowToRGB(o, rows[0][:w], rows[1][:w], rows[2][:w])
		case "CMYK", "YCCK":
			// Pillow reads Adobe CMYK as "CMYK;I": the samples inverted.
			for x := 0; x < w; x++ {
				k := cmyk[4*x : 4*x+4]
				if space == "YCCK" {
					// libjpeg outputs C = 255 - R etc.; inverted that is R.
					yy, u, v := int32(rows[0][x]), rows[1][x], rows[2][x]
					k[0] = clamp255(yy + jpegCrR[v])
					k[1] = clamp255(yy + (jpegCbG[u]+jpegCrG[v])>>16)
					k[2] = clamp255(yy + jpegCbB[u])
				} else {
					k[0], k[1], k[2] = 255-rows[0][x], 255-rows[1][x], 255-rows[2][x]
				}
				k[3] = 255 - rows[3][x]
			}
			cmykRow(o, cmyk)
		}
		sink.row(y, o)
	}
	return nil
}

// colorSpace guesses the colour space as libjpeg-turbo's
// default_decompress_parms does.
func (d *jpegDecoder) colorSpace() string {
	switch len(d.comps) {
	case 1:
		return "L"
	case 3:
		switch {
		case d.jfif:
			return "YCbCr"
		case d.adobe:
			if d.adobeTransform == 0 {
				return "RGB"
			}
			return "YCbCr"
		case d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B':
			return "RGB"
		}
		return "YCbCr"
	}
	if d.adobe && d.adobeTransform != 0 {
		return "YCCK"
	}
	return "CMYK"
}
