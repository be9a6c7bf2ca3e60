package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// defaultKey is the key used when none is named.
const defaultKey = "default"

// keyJSON is the JSON shape of a key in keygen, keys list and keys import.
type keyJSON struct {
	Name      string        `json:"name"`
	Address   chain.Address `json:"address"`
	File      string        `json:"file"`
	Encrypted bool          `json:"encrypted"`
}

// keyShowJSON is the JSON shape of keys show.
type keyShowJSON struct {
	Name      string        `json:"name"`
	Address   chain.Address `json:"address"`
	PublicKey string        `json:"public_key"`
	File      string        `json:"file"`
	Encrypted bool          `json:"encrypted"`
}

func printKey(ios *IOStreams, g *GlobalOptions, k keyJSON) error {
	if g.JSON() {
		return writeJSON(ios.Out, k)
	}
	fl := fields{cs: ios.ColorScheme()}
	fl.Add("name", k.Name)
	fl.Add("address", string(k.Address))
	fl.Add("file", k.File)
	fl.Add("encrypted", yesNo(k.Encrypted))
	return fl.Write(ios.Out)
}

// completeKeyNames completes the names of the keystore's keys.
func completeKeyNames(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		infos, _ := f.Keys().List()
		var out []cobra.Completion
		for _, in := range infos {
			if strings.HasPrefix(in.Name, toComplete) {
				out = append(out, in.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// firstArgKeyName completes a key name as the first argument only.
func firstArgKeyName(f *Factory) cobra.CompletionFunc {
	names := completeKeyNames(f)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return names(cmd, args, toComplete)
	}
}

// ---- keygen ----

// KeygenOptions are the options of `poscli keygen`.
type KeygenOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Keys    func() keystore.Dir
	Pass    passphraseSource
	Ctx     context.Context

	Name    string
	Encrypt bool
}

// NewCmdKeygen builds `poscli keygen [NAME]`.
func NewCmdKeygen(f *Factory, runF func(*KeygenOptions) error) *cobra.Command {
	opts := &KeygenOptions{IO: f.IO, Globals: f.Globals, Keys: f.Keys, Pass: newPassphraseSource(f)}
	cmd := &cobra.Command{
		Use:   "keygen [NAME]",
		Short: "Create a new key",
		Long: `Create a new Ed25519 key named NAME (default "default") in <home>/keys and
print its name, address and file.

With --encrypt the key file is encrypted with a passphrase (PKCS#8, as
OpenSSL reads it). The passphrase comes from --passphrase-file (which implies
--encrypt), else POSCLI_PASSPHRASE, else a prompt (asked twice, not echoed)
when stdin is a terminal, else the first line of stdin.

JSON (-o json): {"name", "address", "file", "encrypted"}.`,
		Example: `  poscli keygen
  poscli keygen alice
  poscli keygen bob --encrypt
  poscli keygen ci --passphrase-file ./pass.txt -o json`,
		Args: args(0, 1, "at most one key name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = defaultKey
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if opts.Pass.File != "" {
				opts.Encrypt = true
			}
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return keygenRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Encrypt, "encrypt", false, "encrypt the key file with a passphrase")
	cmd.Flags().StringVar(&opts.Pass.File, "passphrase-file", "", "read the passphrase from the first line of `FILE` (implies --encrypt)")
	return cmd
}

func keygenRun(opts *KeygenOptions) error {
	dir := opts.Keys()
	// Refuse a bad or taken name before asking for a passphrase.
	if _, err := dir.Info(opts.Name); err == nil {
		return keyError(opts.Name, dir.Path, keystore.ErrExists)
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return keyError(opts.Name, dir.Path, err)
	}
	var pass []byte
	if opts.Encrypt {
		var err error
		if pass, err = opts.Pass.fresh(ctxOr(opts.Ctx), opts.Name); err != nil {
			return err
		}
	}
	k, err := dir.Create(opts.Name, pass)
	if err != nil {
		return keyError(opts.Name, dir.Path, err)
	}
	out := keyJSON{Name: opts.Name, Address: k.Address(), File: k.Path(), Encrypted: len(pass) > 0}
	if !opts.Globals.JSON() && opts.IO.IsTerminal {
		fmt.Fprintln(opts.IO.ErrOut, opts.IO.ErrColorScheme().Green("✓ Created key "+opts.Name))
	}
	return printKey(opts.IO, opts.Globals, out)
}

func ctxOr(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// ---- keys ----

// NewCmdKeys builds `poscli keys` and its subcommands.
func NewCmdKeys(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List, show, import and export keys",
		Long:  "Manage the keys in <home>/keys. Create keys with `poscli keygen`.",
		Example: `  poscli keys list
  poscli keys show alice
  poscli keys import alice ./alice.pem
  poscli keys export alice > alice.pem`,
		Args: parentArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		NewCmdKeysList(f, nil),
		NewCmdKeysShow(f, nil),
		NewCmdKeysImport(f, nil),
		NewCmdKeysExport(f, nil),
	)
	return cmd
}

// KeysListOptions are the options of `poscli keys list`.
type KeysListOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Keys    func() keystore.Dir
}

// NewCmdKeysList builds `poscli keys list`.
func NewCmdKeysList(f *Factory, runF func(*KeysListOptions) error) *cobra.Command {
	opts := &KeysListOptions{IO: f.IO, Globals: f.Globals, Keys: f.Keys}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your keys",
		Long: `List the keys in <home>/keys: name, address, whether the file is encrypted,
and the file.

JSON (-o json): [{"name", "address", "file", "encrypted"}] by name. address
is "" for an encrypted key whose .pub file is missing.`,
		Example: `  poscli keys list
  poscli keys list -o json | jq -r '.[].address'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return keysListRun(opts)
		},
	}
}

func keysListRun(opts *KeysListOptions) error {
	dir := opts.Keys()
	infos, err := dir.List()
	if err != nil {
		return fmt.Errorf("cannot list keys in %s: %v", dir.Path, err)
	}
	out := make([]keyJSON, len(infos))
	for i, in := range infos {
		out[i] = keyJSON{Name: in.Name, Address: in.Address, File: in.Path, Encrypted: in.Encrypted}
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no keys in %s; create one with `poscli keygen`\n", dir.Path)
		return nil
	}
	t := newTable(opts.IO.Out, "name", "address", "encrypted", "file")
	for _, k := range out {
		addr := "?"
		if k.Address != "" {
			addr = k.Address.Short()
		}
		t.Append(k.Name, addr, yesNo(k.Encrypted), k.File)
	}
	return t.Render()
}

// KeysShowOptions are the options of `poscli keys show`.
type KeysShowOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Keys    func() keystore.Dir

	Name string
}

// NewCmdKeysShow builds `poscli keys show [NAME]`.
func NewCmdKeysShow(f *Factory, runF func(*KeysShowOptions) error) *cobra.Command {
	opts := &KeysShowOptions{IO: f.IO, Globals: f.Globals, Keys: f.Keys}
	return &cobra.Command{
		Use:   "show [NAME]",
		Short: "Show a key's address and public key",
		Long: `Show the key NAME (default "default"): its address, public key (hex), file
and whether the file is encrypted. No passphrase is needed.

JSON (-o json): {"name", "address", "public_key", "file", "encrypted"}.`,
		Example: `  poscli keys show
  poscli keys show alice -o json`,
		Args:              args(0, 1, "at most one key name"),
		ValidArgsFunction: firstArgKeyName(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = defaultKey
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return keysShowRun(opts)
		},
	}
}

func keysShowRun(opts *KeysShowOptions) error {
	dir := opts.Keys()
	info, err := dir.Info(opts.Name)
	if err != nil {
		return keyError(opts.Name, dir.Path, err)
	}
	out := keyShowJSON{Name: info.Name, Address: info.Address, File: info.Path, Encrypted: info.Encrypted}
	if pub, err := readPublicKey(strings.TrimSuffix(info.Path, ".pem") + ".pub"); err == nil && chain.AddressOf(pub) == info.Address {
		out.PublicKey = hex.EncodeToString(pub)
	} else if !info.Encrypted {
		if k, err := dir.Load(opts.Name, nil); err == nil {
			out.PublicKey = hex.EncodeToString(k.PublicKey())
		}
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	fl := fields{cs: opts.IO.ColorScheme()}
	fl.Add("name", out.Name)
	fl.Add("address", orUnknown(string(out.Address)))
	fl.Add("public key", orUnknown(out.PublicKey))
	fl.Add("file", out.File)
	fl.Add("encrypted", yesNo(out.Encrypted))
	return fl.Write(opts.IO.Out)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (encrypted key without its .pub file)"
	}
	return s
}

// readPublicKey reads an Ed25519 PEM "PUBLIC KEY" file (keystore's NAME.pub).
func readPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key")
	}
	pk, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := pk.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return pub, nil
}

// KeysImportOptions are the options of `poscli keys import`.
type KeysImportOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Keys    func() keystore.Dir
	Pass    passphraseSource
	Ctx     context.Context

	Name string
	File string
}

// NewCmdKeysImport builds `poscli keys import NAME FILE`.
func NewCmdKeysImport(f *Factory, runF func(*KeysImportOptions) error) *cobra.Command {
	opts := &KeysImportOptions{IO: f.IO, Globals: f.Globals, Keys: f.Keys, Pass: newPassphraseSource(f)}
	cmd := &cobra.Command{
		Use:   "import NAME FILE",
		Short: "Import a PEM key file as NAME",
		Long: `Copy the Ed25519 private key in FILE (PKCS#8 PEM, encrypted or not, as
written by poscli, posd or openssl genpkey -algorithm ed25519) into
<home>/keys as NAME. An encrypted key stays encrypted; its passphrase is
asked (as for keygen) only to check that it opens.

JSON (-o json): {"name", "address", "file", "encrypted"}.`,
		Example: `  poscli keys import alice ./alice.pem
  openssl genpkey -algorithm ed25519 -out k.pem && poscli keys import carol k.pem`,
		Args: args(2, 2, "a key name and a key file"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return nil, cobra.ShellCompDirectiveDefault
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.File = args[0], args[1]
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return keysImportRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Pass.File, "passphrase-file", "", "read the passphrase of an encrypted FILE from the first line of `FILE`")
	return cmd
}

func keysImportRun(opts *KeysImportOptions) error {
	dir := opts.Keys()
	if _, err := dir.Info(opts.Name); err == nil {
		return keyError(opts.Name, dir.Path, keystore.ErrExists)
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return keyError(opts.Name, dir.Path, err)
	}
	enc, err := keystore.IsEncrypted(opts.File)
	if err != nil {
		return importError(opts.File, err)
	}
	var pass []byte
	if enc {
		if pass, err = opts.Pass.existing(ctxOr(opts.Ctx), opts.File); err != nil {
			return importError(opts.File, err)
		}
	}
	info, err := dir.Import(opts.Name, opts.File, pass)
	if err != nil {
		if errors.Is(err, keystore.ErrExists) || errors.Is(err, keystore.ErrBadName) {
			return keyError(opts.Name, dir.Path, err)
		}
		return importError(opts.File, err)
	}
	return printKey(opts.IO, opts.Globals, keyJSON{Name: info.Name, Address: info.Address, File: info.Path, Encrypted: info.Encrypted})
}

func importError(file string, err error) error {
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return fmt.Errorf("key file %s not found", file)
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return fmt.Errorf("wrong passphrase for key file %s", file)
	case errors.Is(err, keystore.ErrPassphraseRequired):
		return fmt.Errorf("key file %s is encrypted: pass --passphrase-file FILE, set POSCLI_PASSPHRASE or run on a terminal to be asked", file)
	case errors.Is(err, keystore.ErrNotAKey), errors.Is(err, keystore.ErrNotEd25519), errors.Is(err, keystore.ErrUnsupportedEncryption):
		// keystore's message names the file and what it holds instead.
		return fmt.Errorf("cannot import: %v", err)
	}
	return fmt.Errorf("cannot import %s: %v", file, err)
}

// KeysExportOptions are the options of `poscli keys export`.
type KeysExportOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Keys    func() keystore.Dir

	Name string
}

// keyExportJSON is the JSON shape of keys export.
type keyExportJSON struct {
	Name      string `json:"name"`
	Encrypted bool   `json:"encrypted"`
	PEM       string `json:"pem"`
}

// NewCmdKeysExport builds `poscli keys export NAME`.
func NewCmdKeysExport(f *Factory, runF func(*KeysExportOptions) error) *cobra.Command {
	opts := &KeysExportOptions{IO: f.IO, Globals: f.Globals, Keys: f.Keys}
	return &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key's PEM file",
		Long: `Print the private key NAME as stored: PEM, still encrypted if it is. Anyone
holding an unencrypted key can spend its coins: keep the output secret.

JSON (-o json): {"name", "encrypted", "pem"}.`,
		Example: `  poscli keys export alice > alice.pem
  poscli --home /other keys import alice alice.pem`,
		Args:              args(1, 1, "a key name"),
		ValidArgsFunction: firstArgKeyName(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return keysExportRun(opts)
		},
	}
}

func keysExportRun(opts *KeysExportOptions) error {
	dir := opts.Keys()
	data, err := dir.Export(opts.Name)
	if err != nil {
		return keyError(opts.Name, dir.Path, err)
	}
	encrypted := strings.Contains(string(data), "ENCRYPTED PRIVATE KEY")
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, keyExportJSON{Name: opts.Name, Encrypted: encrypted, PEM: string(data)})
	}
	if opts.IO.IsTerminal && !encrypted {
		fmt.Fprintln(opts.IO.ErrOut, opts.IO.ErrColorScheme().Yellow("warning: this is the unencrypted private key "+opts.Name+"; whoever reads it can spend its coins"))
	}
	_, err = opts.IO.Out.Write(data)
	return err
}
