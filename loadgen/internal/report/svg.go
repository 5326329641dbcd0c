package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The charts of the HTML report: plain inline SVG, no script, no external
// assets, so the file opens anywhere and can be mailed around.

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

type tick struct {
	v     float64
	label string
}

type axis struct {
	label    string
	min, max float64
	ticks    []tick
}

type line struct {
	name   string
	xs, ys []float64
}

// band is a shaded x range, such as the measured window.
type band struct {
	from, to float64
	label    string
}

// niceTicks returns about n round ticks from 0 to at least max.
func niceTicks(max float64, n int, format func(float64) string) (float64, []tick) {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		max = 1
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	top := math.Ceil(max/step) * step
	var ts []tick
	for v := 0.0; v <= top+step/2; v += step {
		ts = append(ts, tick{v, format(v)})
	}
	return top, ts
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// chart writes an SVG line chart.
func chart(b *strings.Builder, title string, x, y axis, lines []line, shade *band) {
	const w, h, left, right, top, bottom = 760, 300, 70, 170, 30, 45
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	px := func(v float64) float64 { return left + (v-x.min)/(x.max-x.min)*pw }
	py := func(v float64) float64 { return top + ph - (v-y.min)/(y.max-y.min)*ph }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		w, h, w, h, html.EscapeString(title))
	fmt.Fprintf(b, `<text x="%d" y="18" class="t">%s</text>`, left, html.EscapeString(title))
	if shade != nil && shade.to > shade.from {
		x0, x1 := px(math.Max(shade.from, x.min)), px(math.Min(shade.to, x.max))
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%.0f" fill="#f3f6fb"/>`, x0, top, math.Max(x1-x0, 0), ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" class="s">%s</text>`, x0+4, top+12, html.EscapeString(shade.label))
	}
	for _, t := range y.ticks {
		yy := py(t.v)
		fmt.Fprintf(b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, left+pw, yy, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" class="s" text-anchor="end">%s</text>`, left-6, yy+4, html.EscapeString(t.label))
	}
	for _, t := range x.ticks {
		xx := px(t.v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#eee"/>`, xx, xx, top, top+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" class="s" text-anchor="middle">%s</text>`, xx, top+ph+16, html.EscapeString(t.label))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, left, top, pw, ph)
	fmt.Fprintf(b, `<text x="%.0f" y="%d" class="s" text-anchor="middle">%s</text>`, left+pw/2, h-6, html.EscapeString(x.label))
	fmt.Fprintf(b, `<text x="14" y="%.0f" class="s" text-anchor="middle" transform="rotate(-90 14 %.0f)">%s</text>`,
		top+ph/2, top+ph/2, html.EscapeString(y.label))
	for i, l := range lines {
		color := palette[i%len(palette)]
		var pts strings.Builder
		for j := range l.xs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(l.xs[j]), py(math.Min(l.ys[j], y.max)))
		}
		dash := "" // overlapping lines stay visible
		if i%2 == 1 {
			dash = ` stroke-dasharray="7 4"`
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`, color, dash, strings.TrimSpace(pts.String()))
		ly := top + 14 + i*18
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`, left+pw+12, left+pw+30, ly-4, ly-4, color)
		fmt.Fprintf(b, `<text x="%.0f" y="%d" class="s">%s</text>`, left+pw+36, ly, html.EscapeString(l.name))
	}
	b.WriteString(`</svg>`)
}
