// dockerfile-lint runs BuildKit's own Dockerfile front end over a Dockerfile without a Docker
// engine: the parser, every stage's instructions, and the build checks that
// `docker build --check` reports (moby/buildkit frontend/dockerfile/dockerfile2llb.DockerfileLint).
// Base images are not looked up (an offline resolver answers an empty linux/amd64 config), so the
// checks that need a base image's real config (its platform, its ENV) do not apply.
//
//	go run . [-strict] PATH/TO/Dockerfile
//
// Exit status: 0 clean, 1 warnings (with -strict) or a parse/conversion error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

// offline answers every base image with an empty linux/amd64 config instead of asking a registry.
type offline struct{}

func (offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, "", []byte(`{"architecture":"amd64","os":"linux","config":{}}`), nil
}

func main() {
	strict := flag.Bool("strict", false, "exit 1 on any warning")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint [-strict] Dockerfile")
		os.Exit(2)
	}
	path := flag.Arg(0)
	dt, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sourceMap := llb.NewSourceMap(nil, path, "Dockerfile", dt)
	sourceMap.Definition = &llb.Definition{} // what the lint results record of the source; unused here
	opt := dockerfile2llb.ConvertOpt{Config: dockerui.Config{}, SourceMap: sourceMap, MetaResolver: offline{}}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
	for _, w := range res.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", path, line, w.RuleName, w.Detail, w.URL)
	}
	if res.Error != nil {
		fmt.Printf("%s: error: %s\n", path, res.Error.Message)
		os.Exit(1)
	}
	if *strict && len(res.Warnings) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: ok (BuildKit front end, %d warnings)\n", path, len(res.Warnings))
}
