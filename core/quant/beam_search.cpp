#include "core/quant/beam_search.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/candidate_search.h"
#include "core/quant/quant_random.h"

namespace aqlm {

namespace {
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowTile = 64;  // fixed row tiles: results do not depend on the thread count
constexpr uint64_t kGroupOrderStream = 11, kCodebookOrderStream = 12;

template <typename Fn>
void for_rows(ThreadPool& pool, int64_t rows, Fn&& fn) {
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (int64_t r = int64_t(t0) * kRowTile, e = std::min(rows, int64_t(t1) * kRowTile); r < e; ++r) fn(r);
  });
}

// psi(v) = v^T H v - 2 u^T v in double.
double psi(const double* h, const double* u, const double* v, int g) {
  double quad = 0, lin = 0;
  for (int a = 0; a < g; ++a) {
    double hv = 0;
    for (int b = 0; b < g; ++b) hv += h[a * g + b] * v[b];
    quad += v[a] * hv;
    lin += u[a] * v[a];
  }
  return quad - 2.0 * lin;
}
}  // namespace

double beam_search_sweep(QuantizedLayer& layer, const double* xtx, const float* xtx_f, std::vector<float>& error_xtx,
                         const BeamSearchOptions& options, const BeamSearchProgress& progress) {
  const AqlmConfig& cfg = layer.config;
  const int g = cfg.group_size, M = cfg.num_codebooks;
  const int64_t K = cfg.codebook_size(), out = layer.out_features, in = layer.in_features, J = in / g;
  AQLM_CHECK(options.beam_size >= 1, "beam search: beam size ", options.beam_size, " must be at least 1");
  AQLM_CHECK(int64_t(error_xtx.size()) == out * in, "beam search: E XTX has ", error_xtx.size(), " values, expected ",
             out * in);
  const int beam = int(std::min<int64_t>(options.beam_size, std::max<int64_t>(1, K)));
  const float* codebooks = layer.codebooks.data();
  ThreadPool& pool = options.pool ? *options.pool : ThreadPool::global();

  // Work in the visiting order: group a of the permuted layout is group order[a], so the
  // groups still to visit are always the columns to the right.
  const std::vector<int64_t> order = QuantRandom::derive(options.seed, kGroupOrderStream).permutation(J);
  std::vector<int64_t> column(static_cast<size_t>(in));
  for (int64_t a = 0; a < J; ++a)
    for (int d = 0; d < g; ++d) column[size_t(a * g + d)] = order[size_t(a)] * g + d;
  RowMatrixF xp(in, in), rp(out, in);
  for_rows(pool, in, [&](int64_t r) {
    const float* src = xtx_f + column[size_t(r)] * in;
    for (int64_t c = 0; c < in; ++c) xp(r, c) = src[column[size_t(c)]];
  });
  for_rows(pool, out, [&](int64_t o) {
    const float* src = error_xtx.data() + o * in;
    for (int64_t c = 0; c < in; ++c) rp(o, c) = src[column[size_t(c)]];
  });

  std::vector<CandidateSet> sets;
  {
    const std::vector<float> zeros(static_cast<size_t>(K), 0.0f);
    for (int m = 0; m < M; ++m) sets.emplace_back(g, K, codebooks + m * K * g, zeros.data());
  }
  auto word = [&](int m, int64_t k) { return codebooks + (m * K + k) * g; };

  // Per row: up to `beam` hypotheses (codes of the group, code sum v, psi), the linear term u.
  std::vector<uint16_t> hyp_codes(static_cast<size_t>(out * beam * M)), next_codes(hyp_codes.size());
  std::vector<float> hyp_v(static_cast<size_t>(out * beam * g)), next_v(hyp_v.size());
  std::vector<double> hyp_psi(static_cast<size_t>(out * beam)), next_psi(hyp_psi.size());
  std::vector<double> u(static_cast<size_t>(out * g));
  std::vector<float> queries(static_cast<size_t>(out * beam * g));
  std::vector<double> query_const(static_cast<size_t>(out * beam));
  std::vector<uint32_t> found(static_cast<size_t>(out * beam * beam));
  std::vector<float> found_score(found.size());
  std::vector<float> bias(static_cast<size_t>(K));
  std::vector<double> row_change(static_cast<size_t>(out));
  std::vector<char> row_active(static_cast<size_t>(out));
  RowMatrixF delta(out, g);
  std::vector<double> hd(static_cast<size_t>(g * g));
  std::vector<float> hf(static_cast<size_t>(g * g));

  double predicted = 0;
  const int64_t report_every = std::max<int64_t>(1, J / 64);
  for (int64_t a = 0; a < J; ++a) {
    AQLM_CHECK(!(options.cancel && options.cancel->load()), "cancelled");
    const int64_t j = order[size_t(a)];
    for (int r = 0; r < g; ++r)
      for (int c = 0; c < g; ++c) {
        hd[size_t(r * g + c)] = xtx[(j * g + r) * in + j * g + c];
        hf[size_t(r * g + c)] = float(hd[size_t(r * g + c)]);
      }
    const std::vector<int64_t> codebook_order = QuantRandom::derive(options.seed, kCodebookOrderStream, uint64_t(a)).permutation(M);

    // The starting hypothesis of every row: its current codes.
    for_rows(pool, out, [&](int64_t o) {
      const double s = layer.scales[size_t(o)];
      const uint16_t* codes = &layer.codes[size_t((o * J + j) * M)];
      double v[64];
      float* vf = &hyp_v[size_t(o * beam * g)];
      for (int d = 0; d < g; ++d) {
        float sum = 0;
        for (int m = 0; m < M; ++m) sum += word(m, codes[m])[d];
        vf[d] = sum;
        v[d] = sum;
      }
      row_active[size_t(o)] = std::isfinite(s) && std::fabs(s) > 1e-30;
      double* uo = &u[size_t(o * g)];
      for (int r = 0; r < g; ++r) {
        double hv = 0;
        for (int c = 0; c < g; ++c) hv += hd[size_t(r * g + c)] * v[c];
        uo[r] = row_active[size_t(o)] ? double(rp(o, a * g + r)) / s + hv : hv;  // inactive rows keep their codes
      }
      std::copy_n(codes, M, &hyp_codes[size_t(o * beam * M)]);
      hyp_psi[size_t(o * beam)] = psi(hd.data(), uo, v, g);
    });

    int64_t hyps = 1;
    for (int t = 0; t < M; ++t) {
      const int m = int(codebook_order[size_t(t)]);
      pool.parallel_for(size_t(K), [&](size_t c0, size_t c1, int) {
        for (size_t c = c0; c < c1; ++c) {
          const float* w = word(m, int64_t(c));
          float n = 0;
          for (int r = 0; r < g; ++r) {
            float hw = 0;
            for (int q = 0; q < g; ++q) hw += hf[size_t(r * g + q)] * w[q];
            n += w[r] * hw;
          }
          bias[c] = n;
        }
      }, 256);
      sets[size_t(m)].set_bias(bias.data());

      // Queries: q = u - H p, p = the hypothesis' sum without codebook m.
      for_rows(pool, out, [&](int64_t o) {
        const double* uo = &u[size_t(o * g)];
        for (int64_t h = 0; h < hyps; ++h) {
          const int64_t hi = o * beam + h;
          const float* w = word(m, hyp_codes[size_t(hi * M + m)]);
          double p[64];
          for (int d = 0; d < g; ++d) p[d] = double(hyp_v[size_t(hi * g + d)]) - double(w[d]);
          float* q = &queries[size_t((o * hyps + h) * g)];
          for (int r = 0; r < g; ++r) {
            double hp = 0;
            for (int c = 0; c < g; ++c) hp += hd[size_t(r * g + c)] * p[c];
            q[r] = float(uo[r] - hp);
          }
          query_const[size_t(o * hyps + h)] = psi(hd.data(), uo, p, g);
        }
      });
      const int kk = int(std::min<int64_t>(beam, K));
      if (kk == 1)
        search_nearest(pool, sets[size_t(m)], queries.data(), out * hyps, found.data(), found_score.data());
      else
        search_top_k(pool, sets[size_t(m)], queries.data(), out * hyps, kk, found.data(), found_score.data());

      // Keep the best `beam` (parent, word) pairs of each row, in ascending psi; ties keep
      // the earlier parent and the earlier word.
      const int64_t next_hyps = std::min<int64_t>(beam, hyps * kk);
      for_rows(pool, out, [&](int64_t o) {
        std::vector<std::pair<double, int64_t>> cand(static_cast<size_t>(hyps * kk));
        for (int64_t h = 0; h < hyps; ++h)
          for (int r = 0; r < kk; ++r) {
            const int64_t f = (o * hyps + h) * kk + r;
            cand[size_t(h * kk + r)] = {query_const[size_t(o * hyps + h)] + double(found_score[size_t(f)]), h * kk + r};
          }
        std::partial_sort(cand.begin(), cand.begin() + next_hyps, cand.end());
        for (int64_t i = 0; i < next_hyps; ++i) {
          const int64_t h = cand[size_t(i)].second / kk;
          const uint32_t k = found[size_t((o * hyps + h) * kk + cand[size_t(i)].second % kk)];
          const int64_t src = o * beam + h, dst = o * beam + i;
          std::copy_n(&hyp_codes[size_t(src * M)], M, &next_codes[size_t(dst * M)]);
          const float* old_word = word(m, hyp_codes[size_t(src * M + m)]);
          const float* new_word = word(m, k);
          next_codes[size_t(dst * M + m)] = uint16_t(k);
          for (int d = 0; d < g; ++d)
            next_v[size_t(dst * g + d)] = (hyp_v[size_t(src * g + d)] - old_word[d]) + new_word[d];
          next_psi[size_t(dst)] = cand[size_t(i)].first;
        }
      });
      hyp_codes.swap(next_codes);
      hyp_v.swap(next_v);
      hyp_psi.swap(next_psi);
      hyps = next_hyps;
    }

    // Commit the best hypothesis where it lowers psi, recomputed in double from the codes.
    for_rows(pool, out, [&](int64_t o) {
      uint16_t* codes = &layer.codes[size_t((o * J + j) * M)];
      const uint16_t* best = &hyp_codes[size_t(o * beam * M)];
      double v_old[64], v_new[64];
      for (int d = 0; d < g; ++d) {
        v_old[d] = v_new[d] = 0;
        for (int m = 0; m < M; ++m) {
          v_old[d] += word(m, codes[m])[d];
          v_new[d] += word(m, best[m])[d];
        }
      }
      const double* uo = &u[size_t(o * g)];
      const double psi_old = psi(hd.data(), uo, v_old, g), psi_new = psi(hd.data(), uo, v_new, g);
      const double s = layer.scales[size_t(o)];
      if (row_active[size_t(o)] && psi_new < psi_old) {
        float old_sum[64], new_sum[64];  // the float sums dequantize() will use
        for (int d = 0; d < g; ++d) {
          old_sum[d] = new_sum[d] = 0;
          for (int m = 0; m < M; ++m) {
            old_sum[d] += word(m, codes[m])[d];
            new_sum[d] += word(m, best[m])[d];
          }
        }
        std::copy_n(best, M, codes);
        for (int d = 0; d < g; ++d) delta(o, d) = float(s) * new_sum[d] - float(s) * old_sum[d];
        row_change[size_t(o)] = s * s * (psi_new - psi_old);
      } else {
        for (int d = 0; d < g; ++d) delta(o, d) = 0;
        row_change[size_t(o)] = 0;
      }
    });
    for (int64_t o = 0; o < out; ++o) predicted += row_change[size_t(o)];

    // The change of W' moves R = (W - W') XTX for the groups still to visit.
    const int64_t c0 = (a + 1) * g, width = in - c0;
    if (width > 0) {
      const int64_t tiles = (out + kRowTile - 1) / kRowTile;
      pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
        for (size_t t = t0; t < t1; ++t) {
          const int64_t r0 = int64_t(t) * kRowTile, rows = std::min(kRowTile, out - r0);
          if (delta.middleRows(r0, rows).isZero(0)) continue;
          rp.block(r0, c0, rows, width).noalias() -= delta.middleRows(r0, rows) * xp.block(a * g, c0, g, width);
        }
      });
    }
    if (progress && ((a + 1) % report_every == 0 || a + 1 == J)) progress(a + 1, J, predicted);
  }
  return predicted;
}

}  // namespace aqlm
