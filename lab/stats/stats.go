// Package stats holds the few statistics the lab's engines report: the
// chi-square test of observed against expected counts, Wilson score
// intervals for proportions, and nearest-rank percentiles.
package stats

import "math"

// ChiSquareSF is the survival function of the chi-square distribution with
// df degrees of freedom: P(X ≥ x), the p-value of a chi-square statistic x.
// It is Q(df/2, x/2), the regularized upper incomplete gamma function. It
// returns NaN for df < 1 or x NaN.
func ChiSquareSF(x float64, df int) float64 {
	if df < 1 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function
// Q(a, x) = Γ(a, x)/Γ(a) for a > 0, x ≥ 0: by its power series for
// x < a+1 (as 1 - P(a, x)), else by its continued fraction evaluated with
// the modified Lentz method (Numerical Recipes, 6.2).
func gammaQ(a, x float64) float64 {
	const (
		eps   = 1e-15
		tiny  = 1e-300
		steps = 1000
	)
	if x <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg) // x^a e^-x / Γ(a)
	if x < a+1 {
		// P(a, x) = front × Σ x^n / (a (a+1) ... (a+n))
		ap, del := a, 1/a
		sum := del
		for range steps {
			ap++
			del *= x / ap
			sum += del
			if math.Abs(del) < math.Abs(sum)*eps {
				break
			}
		}
		return max(0, min(1, 1-front*sum))
	}
	// Q(a, x) = front × 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...)))
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i <= steps; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return max(0, min(1, front*h))
}

// Z95 is the standard normal quantile of a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval [lo, hi] of a proportion with
// successes out of n trials at normal quantile z (Z95 for 95%). Unlike the
// normal approximation it stays inside [0, 1] and is not empty at 0 or n
// successes, which is where the lab's probabilities often are. n = 0 gives
// [0, 1].
func Wilson(successes, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(successes) / nf
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi = max(0, centre-half), min(1, centre+half)
	// Exact ends: 0 successes cannot have lo > 0, n cannot have hi < 1.
	if successes == 0 {
		lo = 0
	}
	if successes == n {
		hi = 1
	}
	return lo, hi
}

// BinomialSD is the standard deviation of a proportion estimated from n
// trials whose true probability is p: sqrt(p(1-p)/n).
func BinomialSD(p float64, n int) float64 {
	if n <= 0 {
		return math.Inf(1)
	}
	return math.Sqrt(p * (1 - p) / float64(n))
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted
// xs, or 0 when xs is empty.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}
