// Package rpc holds the JSON shapes of posd's HTTP API, shared by the server
// (daemon/api) and the Go client (client) so the two cannot drift apart. It
// only declares types; docs/API.md describes the routes that carry them.
package rpc

import (
	"fmt"

	"github.com/poslab/posd/chain"
)

// Error is the body of every error response: {"error":{"code":..,"message":..}}.
// Codes are stable: chain rule codes (bad_nonce, insufficient_funds, ...),
// mempool codes (already_known, nonce_gap, pool_full, ...) and the API's own
// (bad_json, bad_request, not_found, unauthorized, method_not_allowed,
// payload_too_large, internal).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// ErrorBody wraps Error as it travels.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Status is GET /v1/status.
type Status struct {
	ChainID         string     `json:"chain_id"`
	GenesisHash     chain.Hash `json:"genesis_hash"`
	Height          uint64     `json:"height"`
	HeadHash        chain.Hash `json:"head_hash"`
	HeadTimestamp   int64      `json:"head_timestamp"`
	Address         string     `json:"address"`
	Election        string     `json:"election"`
	Peers           int        `json:"peers"`
	BlockSize       int        `json:"block_size"`
	BlockIntervalMs int64      `json:"block_interval_ms"`
	Pending         int        `json:"pending"`
	PeerID          string     `json:"peer_id,omitempty"`
	P2PAddrs        []string   `json:"p2p_addrs"`
	Version         string     `json:"version"`
	// Byzantine names the misbehaviour this node runs on purpose (lab
	// networks only; absent on an honest node).
	Byzantine string `json:"byzantine,omitempty"`
	// ClockBehindMs, when set, is how far the node's clock seems behind
	// the network's: blocks from elected forgers keep arriving that much
	// ahead of it (they are kept until due, so the node follows late).
	ClockBehindMs int64 `json:"clock_behind_ms,omitempty"`
	// The finality record of the main chain (the v3 rules, docs/CONSENSUS.md): the
	// latest justified and finalized checkpoints. Absent on a node
	// without finality (before v3): clients then fall back to inclusion.
	JustifiedHeight *uint64     `json:"justified_height,omitempty"`
	JustifiedHash   *chain.Hash `json:"justified_hash,omitempty"`
	FinalizedHeight *uint64     `json:"finalized_height,omitempty"`
	FinalizedHash   *chain.Hash `json:"finalized_hash,omitempty"`
	// FinalityStalled is set while finality stalls: which stake is
	// missing (see FinalityStall). Absent while finality keeps up.
	FinalityStalled *FinalityStall `json:"finality_stalled,omitempty"`
}

// HasFinality reports whether the node reports finality.
func (s *Status) HasFinality() bool { return s.FinalizedHeight != nil }

// Account is an element of GET /v1/accounts and the body of GET /v1/accounts/{addr}
// (which adds pending_nonce: the nonce of the sender's last pooled transaction,
// or nonce when none is pooled; the next transaction uses pending_nonce+1).
type Account struct {
	Address chain.Address `json:"address"`
	Balance uint64        `json:"balance"`
	Stake   uint64        `json:"stake"`
	Nonce   uint64        `json:"nonce"`
	// Unbonding is unstaked stake on its way back to the balance (no
	// lots, still slashable); ReleaseHeight is the height whose block
	// returns it (absent when nothing is unbonding).
	Unbonding     uint64  `json:"unbonding,omitempty"`
	ReleaseHeight uint64  `json:"release_height,omitempty"`
	PendingNonce  *uint64 `json:"pending_nonce,omitempty"`
}

// Stake is an element of GET /v1/stakes; share is stake / total stake.
type Stake struct {
	Address chain.Address `json:"address"`
	Stake   uint64        `json:"stake"`
	Share   float64       `json:"share"`
	// Unbonding and ReleaseHeight as in Account.
	Unbonding     uint64 `json:"unbonding,omitempty"`
	ReleaseHeight uint64 `json:"release_height,omitempty"`
}

// TxStatus values.
const (
	TxPending   = "pending"
	TxCommitted = "committed"
)

// TxInfo is GET /v1/txs/{id}.
type TxInfo struct {
	ID        chain.Hash  `json:"id"`
	Status    string      `json:"status"`
	Height    *uint64     `json:"height,omitempty"`
	BlockHash *chain.Hash `json:"block_hash,omitempty"`
	Index     *int        `json:"index,omitempty"`
	// Confirmations is how many main-chain blocks hold the transaction or
	// build on the one that does (1 = in the head). A reorg can still
	// revert a block a few deep; callers that need finality wait for more.
	Confirmations *uint64 `json:"confirmations,omitempty"`
	// Final is true once the block holding the transaction is at or below
	// the finalized checkpoint: no reorg can undo it. Always false on a
	// node without finality (Status.FinalizedHeight absent).
	Final       bool               `json:"final"`
	Transaction *chain.Transaction `json:"transaction"`
}

// SubmitResult is the answer to POST /v1/txs for one transaction (202), or one
// element of the answer to a batch (200, per item: id and status, or error).
type SubmitResult struct {
	ID     *chain.Hash `json:"id,omitempty"`
	Status string      `json:"status,omitempty"`
	Error  *Error      `json:"error,omitempty"`
}

// Config is GET/PUT /v1/config (admin): the node's forging policy. PUT takes
// any subset of the fields.
type Config struct {
	BlockSize       int   `json:"block_size"`
	BlockIntervalMs int64 `json:"block_interval_ms"`
	PoolLimit       int   `json:"pool_limit"`
}

// ConfigPatch is the body of PUT /v1/config: absent fields stay as they are.
type ConfigPatch struct {
	BlockSize       *int   `json:"block_size,omitempty"`
	BlockIntervalMs *int64 `json:"block_interval_ms,omitempty"`
	PoolLimit       *int   `json:"pool_limit,omitempty"`
}

// Peer is an element of GET /v1/peers.
type Peer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	// RTTMs is the round-trip time to the peer in milliseconds: a moving
	// average of the node's pings (one every 10 s), so one slow answer
	// moves it by a fraction. Absent until the peer first answered a ping.
	RTTMs float64 `json:"rtt_ms,omitempty"`
	// RTTLastMs is the round-trip time of the latest answered ping, in
	// milliseconds (absent as RTTMs is).
	RTTLastMs float64 `json:"rtt_last_ms,omitempty"`
}

// Health is GET /healthz.
type Health struct {
	Status string `json:"status"`
	Height uint64 `json:"height"`
}

// NodeKey is GET /pkey: the node's public key (PEM, as the original served
// it), its hex and its address.
type NodeKey struct {
	PublicKeyPEM string        `json:"public_key_pem"`
	PublicKey    string        `json:"public_key"`
	Address      chain.Address `json:"address"`
}

// StakeRequest is the body of POST /v1/stake (admin): stake from the node's key.
type StakeRequest struct {
	Amount uint64 `json:"amount"`
}
