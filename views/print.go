package views

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/liggitt/tabwriter"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"
)

// item is one row of a view: a Worker, Container, Volume or Build.
type item interface {
	runtime.Object
	row(rowContext) metav1.TableRow
	colour() string // ANSI colour of the row on a terminal, "" for none
	fly() any       // fly's JSON shape, for --json
}

// rowContext is what rows depend on besides their object.
type rowContext struct {
	now     time.Time
	loc     *time.Location // for START and END
	details bool           // -d: detailed identifiers
}

func (r rowContext) age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(r.now.Sub(t.Time))
}

const (
	colourReset   = "\x1b[0m"
	colourRed     = "\x1b[31m"
	colourGreen   = "\x1b[32m"
	colourYellow  = "\x1b[33m"
	colourMagenta = "\x1b[35m"
)

// formats other than the table that -o takes.
const (
	formatWide          = "wide"
	customColumnsPrefix = "custom-columns="
)

// printer prints the rows of one view in the chosen format. Tables are
// printed page by page as the rows come (column widths are remembered across
// pages, as kubectl does); whole-list formats (json, yaml, name, jsonpath,
// go-template, fly's --json) gather the items and print them at the end,
// or one by one while watching.
type printer struct {
	out      io.Writer
	errOut   io.Writer
	columns  []metav1.TableColumnDefinition
	rows     rowContext
	flyJSON  bool
	watching bool // after the first listing: print each item as it comes

	// table output
	table   printers.ResourcePrinter
	tw      *tabwriter.Writer
	colours *lineColours // nil without colour
	headers bool         // the header line is still to come

	// custom-columns output
	custom []customColumn

	// other -o formats
	generic printers.ResourcePrinter
	perItem bool // -o name takes items, not lists
	items   []item
	printed bool
}

type printOptions struct {
	format        string
	noHeaders     bool
	withNamespace bool
	flyJSON       bool
	colour        bool
	printFlags    *genericclioptions.PrintFlags
}

func newPrinter(out, errOut io.Writer, columns []metav1.TableColumnDefinition, rows rowContext, o printOptions) (*printer, error) {
	p := &printer{out: out, errOut: errOut, columns: columns, rows: rows, flyJSON: o.flyJSON}
	switch {
	case o.flyJSON:
	case o.format == "" || o.format == formatWide:
		dst := out
		if o.colour {
			p.colours = &lineColours{w: out, atStart: true}
			dst = p.colours
		}
		p.tw = printers.GetNewTabWriter(dst)
		p.headers = !o.noHeaders
		p.table = printers.NewTablePrinter(printers.PrintOptions{
			Wide: o.format == formatWide || rows.details, NoHeaders: o.noHeaders, WithNamespace: o.withNamespace,
		})
	case strings.HasPrefix(o.format, customColumnsPrefix):
		cols, err := parseCustomColumns(strings.TrimPrefix(o.format, customColumnsPrefix))
		if err != nil {
			return nil, err
		}
		p.custom, p.tw, p.headers = cols, printers.GetNewTabWriter(out), !o.noHeaders
	default:
		o.printFlags.OutputFormat = &o.format
		gp, err := o.printFlags.ToPrinter()
		if err != nil {
			return nil, fmt.Errorf("-o %s: %w (also wide and custom-columns=HEADER:JSONPATH,...)", o.format, err)
		}
		p.generic, p.perItem = gp, o.format == "name"
	}
	return p, nil
}

// add prints a page of rows now if the format allows, else keeps them.
func (p *printer) add(items ...item) error {
	if len(items) == 0 {
		return nil
	}
	p.printed = true
	switch {
	case p.table != nil:
		t := &metav1.Table{ColumnDefinitions: p.columns, Rows: make([]metav1.TableRow, len(items))}
		for i, it := range items {
			t.Rows[i] = it.row(p.rows)
		}
		if p.colours != nil {
			if p.headers {
				p.colours.queue = append(p.colours.queue, "")
			}
			for _, it := range items {
				p.colours.queue = append(p.colours.queue, it.colour())
			}
		}
		p.headers = false
		if err := p.table.PrintObj(t, p.tw); err != nil {
			return err
		}
		return p.tw.Flush()
	case p.custom != nil:
		return p.printCustom(items)
	case p.watching && p.flyJSON:
		for _, it := range items {
			if err := writeJSON(p.out, it.fly()); err != nil {
				return err
			}
		}
		return nil
	case p.watching || p.perItem:
		for _, it := range items {
			if err := p.generic.PrintObj(it, p.out); err != nil {
				return err
			}
		}
		return nil
	}
	p.items = append(p.items, items...)
	return nil
}

// finish prints what add kept and says so when there was nothing to print;
// later adds print item by item (-w).
func (p *printer) finish(where string) error {
	defer func() { p.watching, p.items = true, nil }()
	switch {
	case p.flyJSON:
		fly := make([]any, len(p.items))
		for i, it := range p.items {
			fly[i] = it.fly()
		}
		return writeJSON(p.out, fly)
	case p.generic != nil && !p.perItem:
		objs := make([]runtime.Object, len(p.items))
		for i, it := range p.items {
			objs[i] = it
		}
		return p.generic.PrintObj(newList(objs), p.out)
	}
	if !p.printed {
		fmt.Fprintf(p.errOut, "No resources found%s.\n", where)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// customColumn is one HEADER:JSONPATH of -o custom-columns.
type customColumn struct {
	header string
	path   *jsonpath.JSONPath
}

// parseCustomColumns reads kubectl's custom-columns spec. Paths may be
// written .a.b, a.b or {.a.b}, as kubectl accepts.
func parseCustomColumns(spec string) ([]customColumn, error) {
	if spec == "" {
		return nil, fmt.Errorf("custom-columns format specified but no custom columns given")
	}
	var cols []customColumn
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		path = strings.TrimSuffix(strings.TrimPrefix(path, "{"), "}")
		if !strings.HasPrefix(path, ".") {
			path = "." + path
		}
		jp := jsonpath.New(header).AllowMissingKeys(true)
		if err := jp.Parse("{" + path + "}"); err != nil {
			return nil, fmt.Errorf("custom-columns %s: %w", part, err)
		}
		cols = append(cols, customColumn{header: header, path: jp})
	}
	return cols, nil
}

func (p *printer) printCustom(items []item) error {
	if p.headers {
		names := make([]string, len(p.custom))
		for i, c := range p.custom {
			names[i] = c.header
		}
		fmt.Fprintln(p.tw, strings.Join(names, "\t"))
		p.headers = false
	}
	for _, it := range items {
		// Query the JSON form, as the jsonpath printer does, so that paths
		// name the fields -o json shows.
		b, err := json.Marshal(it)
		if err != nil {
			return err
		}
		var obj any
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		cells := make([]string, len(p.custom))
		for i, c := range p.custom {
			results, err := c.path.FindResults(obj)
			if err != nil {
				return err
			}
			var vals []string
			for _, r := range results {
				for _, v := range r {
					vals = append(vals, printers.EscapeTerminal(fmt.Sprint(v.Interface())))
				}
			}
			cells[i] = strings.Join(vals, ",")
			if len(vals) == 0 {
				cells[i] = "<none>"
			}
		}
		fmt.Fprintln(p.tw, strings.Join(cells, "\t"))
	}
	return p.tw.Flush()
}

// lineColours colours whole lines as the table printer writes them: the
// printer escapes ESC inside cells, so colour is added around each line,
// one queued colour per line ("" for none).
type lineColours struct {
	w       io.Writer
	queue   []string
	current string
	atStart bool
}

func (l *lineColours) Write(b []byte) (int, error) {
	n := len(b)
	var buf bytes.Buffer
	for len(b) > 0 {
		if l.atStart {
			l.current = ""
			if len(l.queue) > 0 {
				l.current, l.queue = l.queue[0], l.queue[1:]
			}
			buf.WriteString(l.current)
			l.atStart = false
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			buf.Write(b)
			break
		}
		buf.Write(b[:i])
		if l.current != "" {
			buf.WriteString(colourReset)
		}
		buf.WriteByte('\n')
		b, l.atStart = b[i+1:], true
	}
	if _, err := l.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}
