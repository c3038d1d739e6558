package chattmpl

// Statement nodes.
type (
	node interface{}

	textNode   struct{ s string }
	outputNode struct {
		e    expr
		line int
	}
	ifNode struct {
		conds  []expr
		bodies [][]node
		els    []node
	}
	forNode struct {
		targets []string
		iter    expr
		cond    expr // optional "if" filter
		body    []node
		els     []node
		line    int
	}
	setNode struct {
		targets []string // one name, or several for tuple unpacking
		attrOf  string   // set ns.attr = …: the namespace variable
		e       expr
		line    int
	}
	setBlockNode struct {
		name    string
		body    []node
		filters []*filterExpr // applied to the captured text, innermost first
	}
	macroNode struct {
		m *macro
	}
	filterBlockNode struct {
		filters []*filterExpr
		body    []node
	}
	callBlockNode struct {
		call   *callExpr
		caller *macro
	}
	withNode struct {
		names []string
		vals  []expr
		body  []node
	}
	breakNode    struct{}
	continueNode struct{}
)

// Expression nodes.
type (
	expr interface{}

	constExpr struct{ v any }
	nameExpr  struct {
		name string
		line int
	}
	attrExpr struct {
		obj  expr
		name string
		line int
	}
	itemExpr struct {
		obj, key expr
		line     int
	}
	sliceExpr struct {
		obj, start, stop, step expr // nil when omitted
		line                   int
	}
	callExpr struct {
		fn     expr
		args   []expr
		kwargs []kwarg
		line   int
	}
	kwarg struct {
		name string
		e    expr
	}
	filterExpr struct {
		e      expr // nil inside a filter block or set block
		name   string
		args   []expr
		kwargs []kwarg
		line   int
	}
	testExpr struct {
		e      expr
		name   string
		args   []expr
		negate bool
		line   int
	}
	unaryExpr struct {
		op   string // "not", "-", "+"
		x    expr
		line int
	}
	binExpr struct {
		op   string // arithmetic, "~", "and", "or"
		l, r expr
		line int
	}
	compareExpr struct {
		first expr
		ops   []string // "==", "!=", "<", ">", "<=", ">=", "in", "notin"
		rest  []expr
		line  int
	}
	condExpr struct {
		cond, yes, no expr // no may be nil
	}
	listExpr struct {
		items []expr
		tuple bool
	}
	dictExpr struct {
		keys, vals []expr
	}
)

type macro struct {
	name     string
	params   []string
	defaults []expr // aligned with params; nil when required
	body     []node
}
