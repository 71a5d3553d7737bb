package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// serverColors keeps each server's colour the same in every panel.
var serverColors = map[string]color.Color{
	"rpcd":     color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"rpcd-1w":  color.RGBA{R: 0x9e, G: 0xc8, B: 0xe6, A: 0xff},
	"goserver": color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"gnet":     color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"redis":    color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// colorOf colours a server, or a cache load: rpcd's colour for rpcd's, redis's
// for redis-benchmark's.
func colorOf(name string) color.Color {
	for _, l := range cacheLoads {
		if l.name == name && l.rpcd {
			return serverColors["rpcd"]
		} else if l.name == name {
			return serverColors["redis"]
		}
	}
	return serverColors[name]
}

// cacheNames are the cache loads' names, in table order.
func cacheNames() []string {
	names := make([]string, len(cacheLoads))
	for i, l := range cacheLoads {
		names[i] = l.name
	}
	return names
}

// panel is one bar chart of the figure: one bar per server. trim is cut
// from the front of each bar's name, a prefix the title already says.
type panel struct {
	title  string
	values map[string]float64
	format string
	trim   string
}

// writeChart draws one panel per depth for CPU per request and for throughput,
// and one for idle memory, into a PNG at path.
func writeChart(r *results, path string) error {
	var panels []panel
	for _, depth := range r.opts.depths {
		cpu, rps := map[string]float64{}, map[string]float64{}
		for _, name := range r.opts.servers {
			s := r.summary(name, depth)
			cpu[name], rps[name] = s.cpuUS, s.rps/1000
		}
		panels = append(panels,
			panel{fmt.Sprintf("server CPU µs/request, depth %d (lower is better)", depth), cpu, "%.2f", ""},
			panel{fmt.Sprintf("thousand requests/s, depth %d", depth), rps, "%.0f", ""})
	}
	if len(r.cache) > 0 {
		viaRPCD, direct := map[string]float64{}, map[string]float64{}
		for _, l := range cacheLoads {
			if l.rpcd {
				viaRPCD[l.name] = r.cacheSummary(l.name).rps / 1000
			} else {
				direct[l.name] = r.cacheSummary(l.name).rps / 1000
			}
		}
		panels = append(panels,
			panel{fmt.Sprintf("cache through rpcd: thousand requests/s, %d conns", r.opts.cacheConns), viaRPCD, "%.0f", "rpcd "},
			panel{fmt.Sprintf("redis-benchmark, same redis: thousand requests/s, %d conns", r.opts.cacheConns), direct, "%.0f", "redis-benchmark "})
	}
	if len(r.idle) > 0 {
		mem := map[string]float64{}
		for _, i := range r.idle {
			mem[i.name] = i.bytesPerConn / 1024
		}
		panels = append(panels, panel{fmt.Sprintf("KiB resident per idle connection (%d conns)", r.opts.idle), mem, "%.2f", ""})
	}
	const cols = 2
	rows := (len(panels) + cols - 1) / cols
	img := vgimg.New(vg.Points(900), vg.Points(float64(260*rows)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	for i, p := range panels {
		plt, err := p.plot(append(slices.Clone(r.opts.servers), cacheNames()...))
		if err != nil {
			return err
		}
		plt.Draw(tiles.At(dc, i%cols, i/cols))
	}
	w, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	defer w.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return w.Close()
}

func (p panel) plot(servers []string) (*plot.Plot, error) {
	plt := plot.New()
	plt.Title.Text = p.title
	plt.Y.Min = 0
	var names []string
	for _, name := range servers {
		v, ok := p.values[name]
		if !ok {
			continue
		}
		bars, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(40))
		if err != nil {
			return nil, fmt.Errorf("chart %q: %w", p.title, err)
		}
		bars.XMin = float64(len(names))
		bars.Color = colorOf(name)
		bars.LineStyle.Width = 0
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    plotter.XYs{{X: float64(len(names)), Y: v}},
			Labels: []string{fmt.Sprintf(p.format, v)},
		})
		if err != nil {
			return nil, fmt.Errorf("chart %q: %w", p.title, err)
		}
		labels.Offset = vg.Point{X: -vg.Points(10), Y: vg.Points(3)}
		plt.Add(bars, labels)
		names = append(names, strings.TrimPrefix(name, p.trim))
	}
	plt.NominalX(names...)
	plt.Y.Max *= 1.15 // room for the labels
	return plt, nil
}
