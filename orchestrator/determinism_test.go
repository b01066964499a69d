package orchestrator_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Package-level functions the core must not use: they read the wall clock or
// the global random source. Time and a *rand.Rand are injected instead.
var (
	wallClockFuncs  = []string{"Now", "Since", "Until", "After", "AfterFunc", "Sleep", "NewTimer", "NewTicker", "Tick"}
	globalRandFuncs = []string{"ExpFloat64", "Float32", "Float64", "Int", "Int32", "Int32N", "Int64", "Int64N",
		"IntN", "N", "NormFloat64", "Perm", "Shuffle", "Uint", "Uint32", "Uint32N", "Uint64", "Uint64N", "UintN"}
)

// determinismViolations parses every non-test Go file under dir and returns
// "file:line: ..." messages (paths relative to base) for uses of the wall
// clock or of the global math/rand sources.
func determinismViolations(base, dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir // ignored by the go tool too
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(base, path)
		if err != nil {
			return err
		}
		found, err := fileViolations(path, filepath.ToSlash(rel))
		out = append(out, found...)
		return err
	})
	return out, err
}

func fileViolations(path, display string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	report := func(pos token.Pos, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: %s", display, fset.Position(pos).Line, fmt.Sprintf(format, args...)))
	}
	watched := map[string]string{} // local package name -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		local := p[strings.LastIndex(p, "/")+1:]
		switch p {
		case "math/rand":
			report(imp.Pos(), `imports "math/rand"; take a *rand.Rand (math/rand/v2) from the caller`)
			continue
		case "math/rand/v2":
			local = "rand"
		case "time":
		default:
			continue
		}
		if imp.Name != nil {
			local = imp.Name.Name
		}
		if local == "." {
			report(imp.Pos(), "dot-imports %q, which hides its package-level calls from this check", p)
		}
		watched[local] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		// Obj is set when the name resolves to a declaration in this file,
		// such as a parameter `rand *rand.Rand`; the package name never does.
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Obj != nil {
			return true
		}
		switch watched[id.Name] {
		case "time":
			if slices.Contains(wallClockFuncs, sel.Sel.Name) {
				report(sel.Pos(), "time.%s reads the wall clock; use the injected Clock", sel.Sel.Name)
			}
		case "math/rand/v2":
			if slices.Contains(globalRandFuncs, sel.Sel.Name) {
				report(sel.Pos(), "rand.%s uses the global random source; use the injected *rand.Rand", sel.Sel.Name)
			}
		}
		return true
	})
	return out, nil
}

var _ = Describe("Orchestrator determinism", func() {
	When("the non-test sources under orchestrator/ are scanned", func() {
		It("reads no wall clock and no global random source", func() {
			dir := filepath.Join(modRoot, "orchestrator")
			found, err := determinismViolations(modRoot, dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeEmpty(),
				"the core takes time from an injected Clock and randomness from an injected *rand.Rand")
		})
	})

	When("given a synthetic source file", func() {
		var dir string
		BeforeEach(func() { dir = GinkgoT().TempDir() })

		DescribeTable("reports each offending use with file and line",
			func(file, src string, want []string) {
				Expect(os.MkdirAll(filepath.Join(dir, "pkg"), 0o755)).To(Succeed())
				Expect(os.WriteFile(filepath.Join(dir, "pkg", file), []byte(src), 0o644)).To(Succeed())
				found, err := determinismViolations(dir, dir)
				Expect(err).NotTo(HaveOccurred())
				Expect(found).To(Equal(want))
			},
			Entry("time.Now call", "a.go", "package p\n\nimport \"time\"\n\nfunc f() time.Time { return time.Now() }\n",
				[]string{"pkg/a.go:5: time.Now reads the wall clock; use the injected Clock"}),
			Entry("aliased time, function values and timers", "a.go",
				"package p\n\nimport t \"time\"\n\nvar now = t.Now\n\nfunc f() {\n\tt.Sleep(t.Second)\n\t<-t.After(1)\n}\n",
				[]string{
					"pkg/a.go:5: time.Now reads the wall clock; use the injected Clock",
					"pkg/a.go:8: time.Sleep reads the wall clock; use the injected Clock",
					"pkg/a.go:9: time.After reads the wall clock; use the injected Clock",
				}),
			Entry("math/rand v1 import", "a.go", "package p\n\nimport \"math/rand\"\n\nvar _ = rand.New\n",
				[]string{`pkg/a.go:3: imports "math/rand"; take a *rand.Rand (math/rand/v2) from the caller`}),
			Entry("global math/rand/v2 functions", "a.go",
				"package p\n\nimport \"math/rand/v2\"\n\nfunc f(s []int) int {\n\trand.Shuffle(len(s), nil)\n\treturn rand.N[int](3) + rand.IntN(2)\n}\n",
				[]string{
					"pkg/a.go:6: rand.Shuffle uses the global random source; use the injected *rand.Rand",
					"pkg/a.go:7: rand.N uses the global random source; use the injected *rand.Rand",
					"pkg/a.go:7: rand.IntN uses the global random source; use the injected *rand.Rand",
				}),
			Entry("dot import of time", "a.go", "package p\n\nimport . \"time\"\n\nvar _ Duration\n",
				[]string{`pkg/a.go:3: dot-imports "time", which hides its package-level calls from this check`}),
			Entry("injected *rand.Rand named rand, durations, crypto/rand", "a.go",
				"package p\n\nimport (\n\tcrand \"crypto/rand\"\n\t\"math/rand/v2\"\n\t\"time\"\n)\n\n"+
					"func f(rand *rand.Rand, now time.Time) time.Time {\n\t_, _ = crand.Read(nil)\n"+
					"\treturn now.Add(time.Duration(rand.IntN(5)) * time.Second)\n}\n",
				[]string(nil)),
			Entry("test files are exempt", "a_test.go", "package p\n\nimport \"time\"\n\nvar _ = time.Now()\n",
				[]string(nil)),
		)
	})
})
