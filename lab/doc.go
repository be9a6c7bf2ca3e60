// Package lab is the home of posd's experiments: engines that run the
// protocol's rules at scale, without a network, and measure what honest
// and dishonest participants get out of them. It holds no code itself;
// the engines are its subpackages:
//
//   - lab/sim: chained forger elections over given stakes (who wins, how
//     fairly, what rewards and offline stakers do).
//   - lab/attack: the classic proof-of-stake attacks (seed grinding, seed
//     withholding, private chains) with the defences switched on or off.
//   - lab/load: a load generator that funds, signs and sends transfers to a
//     running network and measures what it commits.
//   - lab/stats: the few statistics they report (chi-square, Wilson
//     intervals, percentiles).
//
// The engines take their own config types and report progress through a
// callback, so a command-line tool, a daemon or a test can drive them.
// Imports flow one way: lab imports chain (and, for load, client and
// keystore), never a command or the daemon.
package lab
