/**
 * Language of a repository file, told from its path alone: indexing sees
 * thousands of paths before it reads any content, and the tree-sitter grammar
 * a file is parsed with follows from this.
 */

export const LANGUAGES = [
  'typescript',
  'tsx',
  'javascript',
  'python',
  'go',
  'java',
  'rust',
  'csharp',
  'c',
  'cpp',
  'ruby',
  'php',
  'kotlin',
  'swift',
  'scala',
  'objc',
  'dart',
  'lua',
  'elixir',
  'erlang',
  'haskell',
  'ocaml',
  'fsharp',
  'clojure',
  'r',
  'perl',
  'zig',
  'solidity',
  'groovy',
  'vue',
  'svelte',
  'markdown',
  'json',
  'yaml',
  'toml',
  'xml',
  'html',
  'css',
  'scss',
  'shell',
  'powershell',
  'sql',
  'graphql',
  'protobuf',
  'terraform',
  'dockerfile',
  'makefile',
  'cmake',
  'ini',
  'text',
] as const;

export type Language = (typeof LANGUAGES)[number];

/**
 * Languages chunked along their syntax tree, with the name of their grammar in
 * `tree-sitter-wasms` (`out/tree-sitter-<name>.wasm`). Those 0.1.x grammars
 * load only with web-tree-sitter 0.22.x, which is why that runtime is pinned.
 * Everything else is chunked by headings (markdown) or line windows.
 */
export const TREE_SITTER_GRAMMARS = {
  typescript: 'typescript',
  tsx: 'tsx',
  javascript: 'javascript',
  python: 'python',
  go: 'go',
  java: 'java',
  rust: 'rust',
  csharp: 'c_sharp',
  c: 'c',
  cpp: 'cpp',
  ruby: 'ruby',
  php: 'php',
  kotlin: 'kotlin',
  swift: 'swift',
  scala: 'scala',
} as const satisfies Partial<Record<Language, string>>;

export type GrammarLanguage = keyof typeof TREE_SITTER_GRAMMARS;

export function hasGrammar(language: Language): language is GrammarLanguage {
  return Object.hasOwn(TREE_SITTER_GRAMMARS, language);
}

const BY_EXTENSION: Record<string, Language> = {
  ts: 'typescript',
  mts: 'typescript',
  cts: 'typescript',
  tsx: 'tsx',
  js: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  jsx: 'javascript',
  py: 'python',
  pyi: 'python',
  pyw: 'python',
  go: 'go',
  java: 'java',
  rs: 'rust',
  cs: 'csharp',
  csx: 'csharp',
  c: 'c',
  // C is the usual reading of `.h` (GitHub Linguist's too); the chunker parses
  // headers with the C++ grammar anyway, which reads both.
  h: 'c',
  cc: 'cpp',
  cpp: 'cpp',
  cxx: 'cpp',
  'c++': 'cpp',
  hh: 'cpp',
  hpp: 'cpp',
  hxx: 'cpp',
  'h++': 'cpp',
  ipp: 'cpp',
  tpp: 'cpp',
  inl: 'cpp',
  cu: 'cpp',
  cuh: 'cpp',
  rb: 'ruby',
  rake: 'ruby',
  gemspec: 'ruby',
  ru: 'ruby',
  php: 'php',
  phtml: 'php',
  kt: 'kotlin',
  kts: 'kotlin',
  swift: 'swift',
  scala: 'scala',
  sc: 'scala',
  sbt: 'scala',
  m: 'objc',
  mm: 'objc',
  dart: 'dart',
  lua: 'lua',
  ex: 'elixir',
  exs: 'elixir',
  erl: 'erlang',
  hrl: 'erlang',
  hs: 'haskell',
  ml: 'ocaml',
  mli: 'ocaml',
  fs: 'fsharp',
  fsi: 'fsharp',
  fsx: 'fsharp',
  clj: 'clojure',
  cljs: 'clojure',
  cljc: 'clojure',
  edn: 'clojure',
  r: 'r',
  pl: 'perl',
  pm: 'perl',
  zig: 'zig',
  sol: 'solidity',
  groovy: 'groovy',
  gradle: 'groovy',
  vue: 'vue',
  svelte: 'svelte',
  md: 'markdown',
  markdown: 'markdown',
  mdx: 'markdown',
  json: 'json',
  jsonc: 'json',
  json5: 'json',
  yml: 'yaml',
  yaml: 'yaml',
  toml: 'toml',
  xml: 'xml',
  xsd: 'xml',
  xsl: 'xml',
  csproj: 'xml',
  fsproj: 'xml',
  vbproj: 'xml',
  props: 'xml',
  targets: 'xml',
  plist: 'xml',
  html: 'html',
  htm: 'html',
  xhtml: 'html',
  css: 'css',
  scss: 'scss',
  sass: 'scss',
  less: 'scss',
  sh: 'shell',
  bash: 'shell',
  zsh: 'shell',
  ksh: 'shell',
  fish: 'shell',
  ps1: 'powershell',
  psm1: 'powershell',
  sql: 'sql',
  graphql: 'graphql',
  gql: 'graphql',
  proto: 'protobuf',
  tf: 'terraform',
  tfvars: 'terraform',
  hcl: 'terraform',
  mk: 'makefile',
  cmake: 'cmake',
  ini: 'ini',
  cfg: 'ini',
  conf: 'ini',
  properties: 'ini',
  editorconfig: 'ini',
};

const BY_FILE_NAME: Record<string, Language> = {
  dockerfile: 'dockerfile',
  containerfile: 'dockerfile',
  makefile: 'makefile',
  gnumakefile: 'makefile',
  'cmakelists.txt': 'cmake',
  rakefile: 'ruby',
  gemfile: 'ruby',
  podfile: 'ruby',
  vagrantfile: 'ruby',
  brewfile: 'ruby',
  fastfile: 'ruby',
  jenkinsfile: 'groovy',
  '.bashrc': 'shell',
  '.bash_profile': 'shell',
  '.zshrc': 'shell',
  '.profile': 'shell',
  '.gitignore': 'text',
  '.gitattributes': 'text',
};

/**
 * The language of `path` (POSIX, relative to the repository root). Files of
 * no known kind are 'text': whether they are text at all is the file
 * filter's call, made on their content.
 */
export function detectLanguage(path: string): Language {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1).toLowerCase();

  const known = BY_FILE_NAME[name];
  if (known) return known;
  // Dockerfile.dev, api.dockerfile, Makefile.am
  if (name.startsWith('dockerfile.') || name.endsWith('.dockerfile')) return 'dockerfile';
  if (name.startsWith('makefile.')) return 'makefile';

  const dot = name.lastIndexOf('.');
  if (dot < 0) return 'text';
  return BY_EXTENSION[name.slice(dot + 1)] ?? 'text';
}
