// compose-model loads Compose files with the real Compose loader
// (github.com/compose-spec/compose-go/v2, the library `docker compose` itself
// uses): files merged in order, variables interpolated from the env files and
// the environment exactly as `docker compose --env-file … -f … config` does,
// then validated and normalised. It prints the resulting model as JSON on
// stdout, or the loader's own error on stderr with exit code 1.
//
//	compose-model -C <project dir> [-f file]... [--env-file file]... [--profile p]...
//
// With `context <dir>` it lists, one per line with its size, the files of a
// Docker build context that <dir>/.dockerignore leaves in, matched by
// github.com/moby/patternmatcher, the matcher Docker's build uses.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) == 3 && os.Args[1] == "context" {
		listContext(os.Args[2])
		return
	}
	var files, envFiles, profiles list
	dir := flag.String("C", ".", "working directory (where the compose command runs)")
	flag.Var(&files, "f", "compose file (repeatable; default: the working directory's docker-compose.yml)")
	flag.Var(&envFiles, "env-file", "env file for interpolation (repeatable; default: .env of the project directory)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.Parse()

	if err := os.Chdir(*dir); err != nil {
		fail(err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory("."),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		// COMPOSE_PROFILES first, then --profile, as the compose CLI does.
		cli.WithDefaultProfiles(),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	}
	po, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		fail(err)
	}
	project, err := po.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
	os.Stdout.WriteString("\n")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err.Error())
	os.Exit(1)
}

// listContext walks dir as `docker build` sends it: every file not excluded by .dockerignore.
func listContext(dir string) {
	var patterns []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			fail(err)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		fail(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A directory is skipped only when nothing below it can be re-included by a ! pattern.
			if excluded && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if !excluded {
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Printf("%d\t%s\n", info.Size(), filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		fail(err)
	}
}
