// piano/data/simulator.hpp: a seeded music-search world that writes JDsearch files.
//
// Logged data cannot say what a user would have clicked had the list been ordered
// differently, and it never shows *why* a click happened. The simulator knows both: it
// draws a world (genres, artists, songs, users with long-term tastes, queries) and logs
// searches in it, writing the JDsearch format (products.txt, train.txt, valid.txt,
// test.txt, read by jdsearch.hpp, whose columns and separators it writes with) plus
// truth.txt, the true click and conversion probability of every test candidate (the
// "oracle" row of the result tables), and the position-free truth of online_truth.txt
// with click_model.txt (the online evaluation).
//
// The model (docs/data.md, "Simulator", has it in full with every constant):
//   - A song s has an artist, genre g_s, sub-genre, era, language, label and popularity
//     pi_s. A user u has genre tastes theta_u (a softmax of Gaussians), favourite
//     artists F_u, a favourite era and a conversion propensity kappa_u. Their affinity
//         aff(u,s) = theta_u[g_s] / max_g theta_u[g] + [artist_s in F_u] + 0.5 [era_s = era_u]
//     is the long-term taste every conversion follows.
//   - A query means an artist or a sub-genre (its "meaning" m). An ambiguous term is an
//     alias of two meanings in different genres; each user who uses it has fixed, for
//     life, which of the two they mean, drawn independently of their taste, so the only
//     evidence of it is their own past searches with that term and what those led to.
//   - The first-stage ranker knows the query's meanings, not the user: for an ambiguous
//     term it fills the list from both meanings alike.
//   - Clicks follow a click model (click_model.hpp), conversions follow taste. Each song of
//     a list has a position-free attraction and conversion probability
//         a_i = P(click_i | examined) = sigmoid(-4 + 5 rel(m*, s_i) + 0.8 aff(u,s_i) + 0.3 pi_s)
//         c_i = P(conv_i | click_i)   = sigmoid(-1.5 + kappa_u + 1.5 aff(u,s_i))
//     with m* the meaning the user intends. By default (PBM) position i (0-based) is
//     examined with (i+1)^-eta, so P(click_i) = (i+1)^-eta a_i; the DBN option is a cascade
//     in which a conversion satisfies the user and ends the visit.
//   - online_truth.txt and click_model.txt let metrics/online.hpp value any order exactly.
//
// Determinism: one std::mt19937_64 seeded with SimulatorOptions::seed drives everything,
// in a fixed order, and every distribution is written out here (std's distributions may
// differ between standard libraries), so the same options give byte-identical files. Across
// platforms that holds as far as their std::exp and std::log round alike.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "piano/core/error.hpp"
#include "piano/data/click_model.hpp"
#include "piano/data/jdsearch.hpp"
#include "piano/data/request.hpp"
#include "piano/data/shuffle.hpp"

namespace piano::data {

/// What to simulate. The defaults make the demo dataset: ~20k requests in a few seconds.
struct SimulatorOptions {
    int users = 2000;
    int songs = 3000;              // >= artists (each artist has a song) and >= max_list_length
    int genres = 12;               // >= 2: an ambiguous term joins meanings of two genres
    int artists = 300;             // one ambiguous term per 10 artists (at least one)
    int requests = 20000;          // logged requests, split in time order train/valid/test
    int min_list_length = 20;      // L is uniform in [min_list_length, max_list_length]
    int max_list_length = 30;
    int max_history = 30;          // H = the user's last min(max_history, past events) events
    double ambiguity = 0.5;        // P(a search uses one of the user's ambiguous terms)
    ClickModel clicks;             // how users go down a list (click_model.hpp): PBM by default
    std::uint64_t seed = 1;
    int vocabulary = 5000;         // term ids are 1..vocabulary
    double valid_fraction = 0.1;   // of requests; the last test_fraction are the test split
    double test_fraction = 0.1;
};

/// The constants of the generative model; docs/data.md explains each.
namespace simulator_model {
inline constexpr int kSubgenresPerGenre = 3;
inline constexpr int kEras = 6;
inline constexpr int kLanguages = 4;
inline constexpr double kLanguageWeights[kLanguages] = {0.5, 0.25, 0.15, 0.1};
inline constexpr int kArtistsPerLabel = 8;
inline constexpr int kArtistsPerAlias = 10;     // ambiguous terms = max(1, artists / 10)
inline constexpr int kModifierTerms = 16;       // "live", "remix", ...: terms that change no meaning
inline constexpr int kMinTitleTerms = 50;       // the vocabulary left for song titles
inline constexpr double kOwnGenre = 0.85;       // P(a song is in its artist's main genre)
inline constexpr double kOwnEra = 0.8;          // P(a song is from its artist's era)
inline constexpr double kTasteSharpness = 2.0;  // theta_u = softmax(2 z), z ~ N(0, I_G)
inline constexpr int kFavouriteArtists = 4;
inline constexpr int kHabitualAliases = 2;      // ambiguous terms each user searches with
inline constexpr double kPropensitySd = 0.8;    // kappa_u ~ N(0, 0.8^2)
inline constexpr double kActivitySd = 0.8;      // P(a request is u's) ~ exp(N(0, 0.8^2))
inline constexpr double kArtistQuery = 0.5;     // P(an unambiguous query names an artist)
inline constexpr double kFavouriteQuery = 0.5;  // P(that artist is a favourite | artist query)
inline constexpr double kModifier = 0.3;        // P(a query carries a modifier term)
inline constexpr double kBrowse = 0.15;         // P(a query-less event precedes a search)
inline constexpr double kRelated = 0.35;        // rel(m, s) of a non-target song of m's genre
inline constexpr double kRankerRelevance = 2.0;
inline constexpr double kRankerPopularity = 0.5;
inline constexpr double kRankerNoise = 0.7;  // scale of the Gumbel noise in the ranker's score
inline constexpr double kClickBias = -4.0;
inline constexpr double kClickRelevance = 5.0;
inline constexpr double kClickAffinity = 0.8;
inline constexpr double kClickPopularity = 0.3;
inline constexpr double kConvBias = -1.5;
inline constexpr double kConvAffinity = 1.5;
inline constexpr double kCartEcho = 0.5;     // P(cart | click, no conv) = 0.5 P(conv | click)
inline constexpr double kFollow = 0.1;       // P(a follow event after a conversion)
inline constexpr double kSessionGap = 86400.0;  // mean seconds between sessions
inline constexpr double kClickGap = 30.0;       // mean seconds between clicks of one session
}  // namespace simulator_model

struct SimArtist {
    int genre = 0;  // main genre
    int era = 0;
    int language = 0;
    int label = 0;
    double popularity = 0.0;  // rho_a ~ N(0, 1)
    std::vector<int> name;    // 1 or 2 terms of its own
};

struct SimSong {
    int artist = 0;
    int genre = 0;
    int subgenre = 0;  // global index genre * kSubgenresPerGenre + k
    int era = 0;
    int language = 0;
    int label = 0;
    double popularity = 0.0;  // pi_s = 0.7 rho_artist + 0.7 N(0, 1)
    std::vector<int> title;   // 2 or 3 terms
};

enum class MeaningKind : std::uint8_t { artist, subgenre };

/// What a query can mean: meaning a < artists is artist a, meaning artists + k sub-genre k.
struct SimMeaning {
    MeaningKind kind = MeaningKind::artist;
    int target = 0;          // the artist or sub-genre index
    int genre = 0;           // the artist's main genre, or the sub-genre's genre
    std::vector<int> name;   // the unambiguous query for it
};

/// An ambiguous term: one term that two users may use for two different meanings.
struct SimAlias {
    int term = 0;
    std::array<int, 2> meanings{};  // in different genres
};

/// A user's fixed reading of one ambiguous term.
struct SimHabit {
    int alias = 0;    // index into World::aliases
    int meaning = 0;  // which of the alias's two meanings this user means by it
};

struct SimUser {
    std::vector<double> taste;        // theta_u [G], sums to 1
    double taste_peak = 0.0;          // max_g theta_u[g]
    std::vector<int> favourites;      // F_u, artist indices
    int era = 0;
    double propensity = 0.0;          // kappa_u, a logit offset of P(conv | click)
    double activity = 1.0;            // relative share of the logged requests
    std::vector<SimHabit> habits;     // the ambiguous terms this user searches with
};

/// The latent world. Ids written to files: song s -> wid s+1, artist a -> brand a+1,
/// label l -> shop l+1; categories share one id space (see category_id).
struct World {
    SimulatorOptions options;
    std::vector<SimArtist> artists;
    std::vector<SimSong> songs;
    std::vector<SimMeaning> meanings;
    std::vector<SimAlias> aliases;
    std::vector<SimUser> users;
    std::vector<int> genre_terms, subgenre_terms, era_terms, language_terms, modifier_terms;
    std::vector<std::vector<int>> songs_of_meaning;  // the targets of each meaning
    std::vector<std::vector<int>> songs_of_genre;

    /// Category ids 1.., distinct across the four levels (genre, sub-genre, era, language)
    /// because jdsearch.hpp reads all four into one table.
    int category_id(int level, int index) const {
        const int g = options.genres;
        const int offsets[4] = {1, 1 + g, 1 + g + g * simulator_model::kSubgenresPerGenre,
                                1 + g + g * simulator_model::kSubgenresPerGenre + simulator_model::kEras};
        return offsets[level] + index;
    }

    bool is_target(int meaning, int song) const {
        const SimMeaning& m = meanings[meaning];
        const SimSong& s = songs[song];
        return m.kind == MeaningKind::artist ? s.artist == m.target : s.subgenre == m.target;
    }

    /// rel(m, s): 1 for m's own songs, kRelated for other songs of m's genre, else 0.
    double relevance(int meaning, int song) const {
        if (is_target(meaning, song)) return 1.0;
        return songs[song].genre == meanings[meaning].genre ? simulator_model::kRelated : 0.0;
    }

    /// aff(u,s) in [0, 2.5], the long-term taste (see the file comment).
    double affinity(int user, int song) const {
        const SimUser& u = users[user];
        const SimSong& s = songs[song];
        const bool favourite = std::find(u.favourites.begin(), u.favourites.end(), s.artist) != u.favourites.end();
        return u.taste[s.genre] / u.taste_peak + (favourite ? 1.0 : 0.0) + (s.era == u.era ? 0.5 : 0.0);
    }

    /// P(click | examined): relevance to the meaning the user intends, taste, popularity.
    double attractiveness(int user, int intended, int song) const {
        using namespace simulator_model;
        return sigmoid(kClickBias + kClickRelevance * relevance(intended, song) +
                       kClickAffinity * affinity(user, song) + kClickPopularity * songs[song].popularity);
    }

    /// P(conv | click): long-term taste and the user's propensity only; no position, no query.
    double conversion(int user, int song) const {
        using namespace simulator_model;
        return sigmoid(kConvBias + users[user].propensity + kConvAffinity * affinity(user, song));
    }

    static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
};

/// One past event of a user: a search (query terms) or a query-less behaviour (empty
/// query, written `-1`), the song, what the user did and when (seconds on u's clock).
struct SimEvent {
    std::vector<int> query;
    int song = 0;
    Behavior type = Behavior::click;
    std::int64_t time = 0;
};

/// One logged request with its latent truth.
struct SimRequest {
    int user = 0;
    std::int64_t time = 0;
    std::vector<int> query;
    int intended = 0;                  // the meaning the user has in mind
    int alternative = -1;              // the other meaning of an ambiguous query, else -1
    std::size_t history_begin = 0;     // the history is timelines[user][begin, end)
    std::size_t history_end = 0;
    std::vector<int> candidates;       // [L] songs, first-stage order
    std::vector<double> p_click;       // [L] P(click_i)
    std::vector<double> p_conv;        // [L] P(conv_i | click_i)
    std::vector<double> attraction;    // [L] P(click_i | examined), position-free
    std::vector<int> label;            // [L] 0 none, 1 click, 2 cart, 3 conversion

    bool ambiguous() const { return alternative >= 0; }
};

struct Simulation {
    World world;
    std::vector<std::vector<SimEvent>> timelines;  // per user, in time order
    std::vector<SimRequest> requests;              // train, then valid, then test
    std::size_t train = 0, valid = 0, test = 0;
};

/// One line of truth.txt: a test request's true probabilities in first-stage order.
struct TruthRow {
    std::size_t request = 0;      // 0-based index of the request in test.txt
    std::vector<double> p_click;  // [L] P(click_i)
    std::vector<double> p_conv;   // [L] P(conv_i | click_i)

    /// The oracle's score: the true pCTCVR_i = P(click_i) P(conv_i | click_i).
    std::vector<double> pctcvr() const {
        std::vector<double> out(p_click.size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = p_click[i] * p_conv[i];
        return out;
    }
};

/// One line of online_truth.txt: what the online evaluation needs to value any order of
/// a test request (metrics/online.hpp), in first-stage order.
struct OnlineTruthRow {
    std::size_t request = 0;         // 0-based index of the request in test.txt
    std::vector<double> attraction;  // [L] a_i = P(click_i | examined), position-free
    std::vector<double> conversion;  // [L] c_i = P(conv_i | click_i)
};

namespace simulator_detail {

/// Every draw the simulator makes, from one mt19937_64 with hand-written distributions.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : engine_(seed) {}

    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
    double open_uniform() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
    int below(int n) { return static_cast<int>(uniform_below(engine_, static_cast<std::uint64_t>(n))); }
    bool chance(double p) { return uniform() < p; }
    // Box-Muller; one of the pair is enough here.
    double normal() {
        const double radius = std::sqrt(-2.0 * std::log(open_uniform()));
        return radius * std::cos(6.283185307179586 * uniform());
    }
    double gumbel() { return -std::log(-std::log(open_uniform())); }
    double exponential(double mean) { return -mean * std::log(open_uniform()); }
    /// An index drawn with probability proportional to weight: `cumulative` holds the
    /// running sums of the weights (the last is the total, > 0).
    int categorical(const std::vector<double>& cumulative) {
        const double u = uniform() * cumulative.back();
        const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
        return static_cast<int>(std::min<std::ptrdiff_t>(it - cumulative.begin(),
                                                         static_cast<std::ptrdiff_t>(cumulative.size()) - 1));
    }
    std::mt19937_64& engine() { return engine_; }

private:
    std::mt19937_64 engine_;
};

inline std::vector<double> running_sums(const std::vector<double>& weights) {
    std::vector<double> sums(weights.size());
    double total = 0.0;
    for (std::size_t i = 0; i < weights.size(); ++i) sums[i] = total += weights[i];
    return sums;
}

inline int alias_count(const SimulatorOptions& o) {
    return std::max(1, o.artists / simulator_model::kArtistsPerAlias);
}

/// Terms the world's names need before song titles get the rest.
inline long named_terms(const SimulatorOptions& o) {
    using namespace simulator_model;
    return static_cast<long>(o.genres) * (1 + kSubgenresPerGenre) + kEras + kLanguages + 2L * o.artists +
           alias_count(o) + kModifierTerms;
}

inline std::size_t split_size(int requests, double fraction) {
    return static_cast<std::size_t>(std::llround(static_cast<double>(requests) * fraction));
}

inline World build_world(const SimulatorOptions& o, Rng& rng) {
    using namespace simulator_model;
    World w;
    w.options = o;
    const int G = o.genres;
    const int A = o.artists;
    const int S = kSubgenresPerGenre;
    int next_term = 1;
    auto take_terms = [&](std::vector<int>& out, int n) {
        for (int k = 0; k < n; ++k) out.push_back(next_term++);
    };
    take_terms(w.genre_terms, G);
    take_terms(w.subgenre_terms, G * S);
    take_terms(w.era_terms, kEras);
    take_terms(w.language_terms, kLanguages);

    const std::vector<double> language_cum =
        running_sums(std::vector<double>(std::begin(kLanguageWeights), std::end(kLanguageWeights)));
    const int labels = std::max(1, A / kArtistsPerLabel);
    w.artists.resize(A);
    std::vector<double> artist_weight(A);
    for (int a = 0; a < A; ++a) {
        SimArtist& artist = w.artists[a];
        artist.genre = rng.below(G);
        artist.era = rng.below(kEras);
        artist.language = rng.categorical(language_cum);
        artist.label = rng.below(labels);
        artist.popularity = rng.normal();
        take_terms(artist.name, rng.chance(0.5) ? 2 : 1);
        artist_weight[a] = std::exp(artist.popularity);
    }

    std::vector<int> alias_terms;
    take_terms(alias_terms, alias_count(o));
    take_terms(w.modifier_terms, kModifierTerms);
    const int first_title_term = next_term;
    const int title_terms = o.vocabulary - first_title_term + 1;

    // Songs: the first A go one to each artist (no artist is empty), the rest to artists
    // in proportion to exp(rho_a), so popular artists have more songs.
    const std::vector<double> artist_cum = running_sums(artist_weight);
    w.songs.resize(o.songs);
    for (int s = 0; s < o.songs; ++s) {
        SimSong& song = w.songs[s];
        song.artist = s < A ? s : rng.categorical(artist_cum);
        const SimArtist& artist = w.artists[song.artist];
        song.genre = rng.chance(kOwnGenre) ? artist.genre : rng.below(G);
        song.subgenre = song.genre * S + rng.below(S);
        song.era = rng.chance(kOwnEra) ? artist.era : rng.below(kEras);
        song.language = artist.language;
        song.label = artist.label;
        song.popularity = 0.7 * artist.popularity + 0.7 * rng.normal();
        const int n_title = 2 + rng.below(2);
        for (int k = 0; k < n_title; ++k) song.title.push_back(first_title_term + rng.below(title_terms));
    }

    for (int a = 0; a < A; ++a) w.meanings.push_back({MeaningKind::artist, a, w.artists[a].genre, w.artists[a].name});
    for (int sg = 0; sg < G * S; ++sg)
        w.meanings.push_back({MeaningKind::subgenre, sg, sg / S, {w.genre_terms[sg / S], w.subgenre_terms[sg]}});
    w.songs_of_meaning.resize(w.meanings.size());
    w.songs_of_genre.resize(G);
    for (int s = 0; s < o.songs; ++s) {
        w.songs_of_meaning[w.songs[s].artist].push_back(s);
        w.songs_of_meaning[A + w.songs[s].subgenre].push_back(s);
        w.songs_of_genre[w.songs[s].genre].push_back(s);
    }

    // Ambiguous terms: the first meaning is an artist (distinct for every term), the
    // second, from another genre, a sub-genre ("blue": blues) or an artist (a band "Blue").
    std::vector<int> artist_order(A);
    for (int a = 0; a < A; ++a) artist_order[a] = a;
    seeded_shuffle(artist_order, rng.engine());
    for (std::size_t k = 0; k < alias_terms.size(); ++k) {
        const int first = artist_order[k];
        const int genre = w.artists[first].genre;
        std::vector<int> other_artists;
        for (int a = 0; a < A; ++a)
            if (w.artists[a].genre != genre) other_artists.push_back(a);
        int second = 0;
        if (other_artists.empty() || rng.chance(0.5)) {
            const int other_genre = (genre + 1 + rng.below(G - 1)) % G;
            second = A + other_genre * S + rng.below(S);
        } else {
            second = other_artists[rng.below(static_cast<int>(other_artists.size()))];
        }
        w.aliases.push_back({alias_terms[k], {first, second}});
    }

    // Users: taste, favourites in proportion to theta_u[genre] exp(rho_a), habits whose
    // meaning is a fair coin, independent of the taste.
    w.users.resize(o.users);
    for (SimUser& u : w.users) {
        std::vector<double> z(G);
        for (double& v : z) v = kTasteSharpness * rng.normal();
        const double z_max = *std::max_element(z.begin(), z.end());
        double total = 0.0;
        for (double& v : z) total += v = std::exp(v - z_max);
        u.taste.resize(G);
        for (int g = 0; g < G; ++g) u.taste[g] = z[g] / total;
        u.taste_peak = *std::max_element(u.taste.begin(), u.taste.end());

        std::vector<double> weight(A);
        for (int a = 0; a < A; ++a) weight[a] = u.taste[w.artists[a].genre] * artist_weight[a];
        for (int k = 0; k < std::min(kFavouriteArtists, A); ++k) {
            const int a = rng.categorical(running_sums(weight));
            u.favourites.push_back(a);
            weight[a] = 0.0;
        }
        u.era = rng.below(kEras);
        u.propensity = kPropensitySd * rng.normal();
        u.activity = std::exp(kActivitySd * rng.normal());

        std::vector<int> alias_order(w.aliases.size());
        for (std::size_t k = 0; k < alias_order.size(); ++k) alias_order[k] = static_cast<int>(k);
        seeded_shuffle(alias_order, rng.engine());
        const std::size_t n_habits = std::min<std::size_t>(kHabitualAliases, alias_order.size());
        for (std::size_t k = 0; k < n_habits; ++k)
            u.habits.push_back({alias_order[k], w.aliases[alias_order[k]].meanings[rng.below(2)]});
    }
    return w;
}

/// The outcome of one search: query, the first-stage list, its truth and its labels.
struct Search {
    std::vector<int> query;
    int intended = 0;
    int alternative = -1;
    std::vector<int> candidates;
    std::vector<double> p_click, p_conv;
    std::vector<double> attraction;  // P(click | examined), position-free
    std::vector<int> label;
};

/// Runs searches and query-less events in a world, drawing from the shared Rng.
class Searcher {
public:
    Searcher(const World& world, Rng& rng)
        : w_(world), rng_(rng), scored_(world.songs.size(), 0), pooled_(world.songs.size(), 0),
          score_(world.songs.size(), 0.0) {
        const int A = static_cast<int>(w_.artists.size());
        std::vector<std::vector<double>> weights(w_.options.genres);
        artists_of_genre_.resize(w_.options.genres);
        for (int a = 0; a < A; ++a) {
            artists_of_genre_[w_.artists[a].genre].push_back(a);
            weights[w_.artists[a].genre].push_back(std::exp(w_.artists[a].popularity));
        }
        for (const auto& wg : weights) artist_cum_of_genre_.push_back(running_sums(wg));
    }

    Search search(int user) {
        using namespace simulator_model;
        const SimUser& u = w_.users[user];
        Search out;
        std::array<int, 2> query_meanings{};
        int n_meanings = 1;
        if (!u.habits.empty() && rng_.chance(w_.options.ambiguity)) {
            const SimHabit& habit = u.habits[rng_.below(static_cast<int>(u.habits.size()))];
            const SimAlias& alias = w_.aliases[habit.alias];
            out.intended = habit.meaning;
            out.alternative = alias.meanings[0] == habit.meaning ? alias.meanings[1] : alias.meanings[0];
            out.query = {alias.term};
            query_meanings = alias.meanings;  // the alias's order, not the user's: the ranker is not personal
            n_meanings = 2;
        } else {
            out.intended = taste_meaning(u);
            out.query = w_.meanings[out.intended].name;
            query_meanings[0] = out.intended;
        }
        if (rng_.chance(kModifier)) out.query.push_back(w_.modifier_terms[rng_.below(kModifierTerms)]);

        out.candidates = first_stage(query_meanings, n_meanings);
        const std::size_t L = out.candidates.size();
        out.p_click.resize(L);
        out.p_conv.resize(L);
        out.label.resize(L);
        // Every song's position-free attraction a_i and conversion c_i, then the clicks of
        // the click model. PBM draws each rank on its own: P(click_i) = e_i a_i. DBN goes
        // down the list: a conversion satisfies and ends the visit, else the user goes on
        // with probability gamma; P(click_i) is then the marginal e_i a_i of click_model.hpp.
        out.attraction.resize(L);
        for (std::size_t i = 0; i < L; ++i) {
            const int s = out.candidates[i];
            out.attraction[i] = w_.attractiveness(user, out.intended, s);
            out.p_conv[i] = w_.conversion(user, s);
        }
        const ClickModel& clicks = w_.options.clicks;
        const std::vector<double> examined = examination(clicks, out.attraction, out.p_conv);
        for (std::size_t i = 0; i < L; ++i) {
            out.p_click[i] = examined[i] * out.attraction[i];
            if (clicks.kind == ClickModelKind::dbn) {
                if (!rng_.chance(out.attraction[i])) {
                    if (!rng_.chance(clicks.persistence)) break;
                    continue;
                }
            } else if (!rng_.chance(out.p_click[i])) {
                continue;
            }
            if (rng_.chance(out.p_conv[i])) {
                out.label[i] = 3;
                if (clicks.kind == ClickModelKind::dbn) break;  // satisfied
            } else {
                out.label[i] = rng_.chance(kCartEcho * out.p_conv[i]) ? 2 : 1;
            }
            if (clicks.kind == ClickModelKind::dbn && !rng_.chance(clicks.persistence)) break;
        }
        return out;
    }

    /// A query-less event (browsing, a playlist): a favourite artist's song or a song of a
    /// genre drawn from the taste; a full play with P(conv | click), else a click.
    SimEvent browse(int user, std::int64_t time) {
        const SimUser& u = w_.users[user];
        SimEvent e;
        e.time = time;
        const std::vector<int>* pool = nullptr;
        if (!u.favourites.empty() && rng_.chance(0.5))
            pool = &w_.songs_of_meaning[u.favourites[rng_.below(static_cast<int>(u.favourites.size()))]];
        else
            pool = &w_.songs_of_genre[rng_.categorical(running_sums(u.taste))];
        e.song = pool->empty() ? rng_.below(static_cast<int>(w_.songs.size()))
                               : (*pool)[rng_.below(static_cast<int>(pool->size()))];
        e.type = rng_.chance(w_.conversion(user, e.song)) ? Behavior::purchase : Behavior::click;
        return e;
    }

private:
    /// An unambiguous intent: a genre from the taste, then its artist (a favourite, or one
    /// in proportion to popularity) or one of its sub-genres.
    int taste_meaning(const SimUser& u) {
        using namespace simulator_model;
        const int g = rng_.categorical(running_sums(u.taste));
        if (rng_.chance(kArtistQuery)) {
            if (rng_.chance(kFavouriteQuery)) return u.favourites[rng_.below(static_cast<int>(u.favourites.size()))];
            if (!artists_of_genre_[g].empty()) return artists_of_genre_[g][rng_.categorical(artist_cum_of_genre_[g])];
        }
        return static_cast<int>(w_.artists.size()) + g * kSubgenresPerGenre + rng_.below(kSubgenresPerGenre);
    }

    /// The ranker's score f(s) = 2 max_m rel(m, s) + 0.5 pi_s + 0.7 Gumbel, drawn once per
    /// song per list (epoch stamps mark which scores belong to the current list).
    double score(int song, const std::array<int, 2>& meanings, int n_meanings) {
        using namespace simulator_model;
        if (scored_[song] != epoch_) {
            double rel = 0.0;
            for (int k = 0; k < n_meanings; ++k) rel = std::max(rel, w_.relevance(meanings[k], song));
            score_[song] = kRankerRelevance * rel + kRankerPopularity * w_.songs[song].popularity +
                           kRankerNoise * rng_.gumbel();
            scored_[song] = epoch_;
        }
        return score_[song];
    }

    /// The first-stage list: for each meaning of the query, its ceil(L / #meanings) best
    /// own songs and as many songs of its genre; ceil(L / 5) random songs; then the top L
    /// of that pool by f. Giving each meaning the same quota is what a search engine that
    /// cannot tell the readings apart does: it shows both.
    std::vector<int> first_stage(const std::array<int, 2>& meanings, int n_meanings) {
        const int L = w_.options.min_list_length +
                      rng_.below(w_.options.max_list_length - w_.options.min_list_length + 1);
        const int n_songs = static_cast<int>(w_.songs.size());
        ++epoch_;
        std::vector<int> pool;
        auto add = [&](int s) {
            if (pooled_[s] == epoch_) return;
            pooled_[s] = epoch_;
            score(s, meanings, n_meanings);
            pool.push_back(s);
        };
        auto by_score = [&](int a, int b) { return score_[a] != score_[b] ? score_[a] > score_[b] : a < b; };
        const int quota = (L + n_meanings - 1) / n_meanings;
        for (int k = 0; k < n_meanings; ++k) {
            std::vector<int> own = w_.songs_of_meaning[meanings[k]];
            for (int s : own) score(s, meanings, n_meanings);
            const std::size_t keep = std::min<std::size_t>(static_cast<std::size_t>(quota), own.size());
            std::partial_sort(own.begin(), own.begin() + static_cast<std::ptrdiff_t>(keep), own.end(), by_score);
            for (std::size_t j = 0; j < keep; ++j) add(own[j]);
            const std::vector<int>& related = w_.songs_of_genre[w_.meanings[meanings[k]].genre];
            if (related.empty()) continue;
            for (int j = 0; j < quota; ++j) add(related[rng_.below(static_cast<int>(related.size()))]);
        }
        for (int j = 0; j < (L + 4) / 5; ++j) add(rng_.below(n_songs));
        while (static_cast<int>(pool.size()) < L) add(rng_.below(n_songs));  // songs >= L, so this ends
        std::sort(pool.begin(), pool.end(), by_score);
        pool.resize(static_cast<std::size_t>(L));
        return pool;
    }

    const World& w_;
    Rng& rng_;
    std::vector<std::vector<int>> artists_of_genre_;
    std::vector<std::vector<double>> artist_cum_of_genre_;
    std::vector<std::uint32_t> scored_, pooled_;  // the epoch in which a song was scored / pooled
    std::vector<double> score_;
    std::uint32_t epoch_ = 0;
};

inline void append_terms(std::string& out, const std::vector<int>& terms) {
    for (std::size_t k = 0; k < terms.size(); ++k) {
        if (k > 0) out += kTermSep;
        out += std::to_string(terms[k]);
    }
}

/// A probability with 6 decimals, independent of the locale (printf's is not).
inline void append_probability(std::string& out, double p) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, p, std::chars_format::fixed, 6);
    out.append(buffer, result.ptr);
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!file) throw std::runtime_error("simulator: cannot write " + path.string());
}

}  // namespace simulator_detail

/// Throws ConfigError naming the first option that cannot work.
inline void check_options(const SimulatorOptions& o) {
    auto fail = [](const std::string& what) { throw ConfigError("SimulatorOptions: " + what); };
    auto at_least = [&](const char* name, long value, long minimum) {
        if (value < minimum)
            fail(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " + std::to_string(value));
    };
    at_least("users", o.users, 1);
    at_least("genres", o.genres, 2);
    at_least("artists", o.artists, 1);
    at_least("songs", o.songs, o.artists);
    at_least("min_list_length", o.min_list_length, 1);
    at_least("max_list_length", o.max_list_length, o.min_list_length);
    at_least("songs", o.songs, o.max_list_length);
    at_least("max_history", o.max_history, 0);
    at_least("requests", o.requests, 1);
    at_least("vocabulary", o.vocabulary, simulator_detail::named_terms(o) + simulator_model::kMinTitleTerms);
    if (!(o.ambiguity >= 0.0 && o.ambiguity <= 1.0))
        fail("ambiguity must be in [0, 1], got " + std::to_string(o.ambiguity));
    try {
        o.clicks.check();
    } catch (const ConfigError& e) {
        fail(e.what());
    }
    if (!(o.valid_fraction >= 0.0 && o.test_fraction >= 0.0 && o.valid_fraction + o.test_fraction < 1.0))
        fail("valid_fraction and test_fraction must be >= 0 with a sum < 1");
    const std::size_t held_out = simulator_detail::split_size(o.requests, o.valid_fraction) +
                                 simulator_detail::split_size(o.requests, o.test_fraction);
    if (held_out >= static_cast<std::size_t>(o.requests))
        fail("requests = " + std::to_string(o.requests) + " leaves no training request after the valid and test splits");
}

/// Draws the world and logs `options.requests` searches in it.
///
/// Every user first lives a warm-up past of 0..max_history/2 sessions that are not logged,
/// so histories start at different lengths (some empty); then each logged request picks a
/// user in proportion to activity. A session is: a session gap, with probability kBrowse a
/// query-less event and another gap, then a search whose clicked candidates (top to
/// bottom, kClickGap apart) join the user's timeline with the search's query. A request's
/// history is the user's last max_history events before it. Requests keep generation
/// order, which is every user's time order; the first ones are train, then valid, then
/// test, so no history holds an event from after its request.
inline Simulation simulate_music_search(const SimulatorOptions& options) {
    using namespace simulator_model;
    check_options(options);
    simulator_detail::Rng rng(options.seed);
    Simulation sim;
    sim.world = simulator_detail::build_world(options, rng);
    simulator_detail::Searcher searcher(sim.world, rng);
    const int U = options.users;
    sim.timelines.resize(U);
    std::vector<std::int64_t> clock(U, 0);

    auto gap = [&](double mean) { return 1 + static_cast<std::int64_t>(std::llround(rng.exponential(mean))); };
    auto session = [&](int u, bool logged) {
        std::vector<SimEvent>& timeline = sim.timelines[u];
        clock[u] += gap(kSessionGap);
        if (rng.chance(kBrowse)) {
            timeline.push_back(searcher.browse(u, clock[u]));
            clock[u] += gap(kSessionGap);
        }
        simulator_detail::Search s = searcher.search(u);
        if (logged) {
            SimRequest r;
            r.user = u;
            r.time = clock[u];
            r.query = s.query;
            r.intended = s.intended;
            r.alternative = s.alternative;
            r.history_end = timeline.size();
            r.history_begin = r.history_end - std::min(r.history_end, static_cast<std::size_t>(options.max_history));
            r.candidates = s.candidates;
            r.p_click = s.p_click;
            r.p_conv = s.p_conv;
            r.attraction = s.attraction;
            r.label = s.label;
            sim.requests.push_back(std::move(r));
        }
        for (std::size_t i = 0; i < s.candidates.size(); ++i) {
            if (s.label[i] == 0) continue;
            clock[u] += gap(kClickGap);
            const Behavior type = s.label[i] == 3 ? Behavior::purchase : s.label[i] == 2 ? Behavior::cart : Behavior::click;
            timeline.push_back({s.query, s.candidates[i], type, clock[u]});
            if (s.label[i] == 3 && rng.chance(kFollow)) {
                clock[u] += gap(kClickGap);
                timeline.push_back({s.query, s.candidates[i], Behavior::follow, clock[u]});
            }
        }
    };

    for (int u = 0; u < U; ++u) {
        const int sessions = rng.below(options.max_history / 2 + 1);
        for (int k = 0; k < sessions; ++k) session(u, false);
    }
    std::vector<double> activity(U);
    for (int u = 0; u < U; ++u) activity[u] = sim.world.users[u].activity;
    const std::vector<double> activity_cum = simulator_detail::running_sums(activity);
    sim.requests.reserve(static_cast<std::size_t>(options.requests));
    for (int r = 0; r < options.requests; ++r) session(rng.categorical(activity_cum), true);

    sim.valid = simulator_detail::split_size(options.requests, options.valid_fraction);
    sim.test = simulator_detail::split_size(options.requests, options.test_fraction);
    sim.train = sim.requests.size() - sim.valid - sim.test;
    return sim;
}

/// The oracle: the true probabilities of every test request, one TruthRow each.
inline std::vector<TruthRow> oracle_truth(const Simulation& sim) {
    std::vector<TruthRow> rows;
    rows.reserve(sim.test);
    for (std::size_t k = 0; k < sim.test; ++k) {
        const SimRequest& r = sim.requests[sim.train + sim.valid + k];
        rows.push_back({k, r.p_click, r.p_conv});
    }
    return rows;
}

/// The position-free truth of every test request, one OnlineTruthRow each.
inline std::vector<OnlineTruthRow> online_truth(const Simulation& sim) {
    std::vector<OnlineTruthRow> rows;
    rows.reserve(sim.test);
    for (std::size_t k = 0; k < sim.test; ++k) {
        const SimRequest& r = sim.requests[sim.train + sim.valid + k];
        rows.push_back({k, r.attraction, r.p_conv});
    }
    return rows;
}

/// Writes products.txt, train.txt, valid.txt, test.txt (JDsearch format, header lines
/// included) and truth.txt into `dir`, creating it if needed.
///
/// Requests files: labels `0.0`/`1.0`/`2.0`/`3.0`; history queries `-1` when query-less;
/// history_time_list = 0, the gaps between consecutive events, then the gap from the last
/// event to the request (H+1 numbers, seconds). An empty history (H = 0) is three empty
/// fields and a time list of `0`.
/// truth.txt, no header, one line per test request in test.txt order:
///   `k \t p_click_0 _ ... _ p_click_{L-1} \t p_conv_0 _ ... _ p_conv_{L-1}`
/// with k the 0-based request index in test.txt, p_conv = P(conv | click), 6 decimals;
/// p_click is the marginal P(click_i) at the logged position under the click model.
/// online_truth.txt, the same layout with the position-free attraction a_i and the
/// conversion c_i = P(conv | click), and click_model.txt (click_model.hpp) hold what the
/// online evaluation needs to value any order of a test request.
inline void write_jdsearch_files(const Simulation& sim, const std::filesystem::path& dir) {
    using simulator_detail::append_terms;
    std::filesystem::create_directories(dir);
    const World& w = sim.world;

    std::string products = header_line(kProductFields) + '\n';
    for (std::size_t s = 0; s < w.songs.size(); ++s) {
        const SimSong& song = w.songs[s];
        const int fields[4] = {song.genre, song.subgenre, song.era, song.language};
        const std::vector<int>* names[4] = {&w.genre_terms, &w.subgenre_terms, &w.era_terms, &w.language_terms};
        products += std::to_string(s + 1) + kFieldSep;
        append_terms(products, song.title);
        products += kFieldSep + std::to_string(song.artist + 1) + kFieldSep;
        append_terms(products, w.artists[song.artist].name);
        for (int level = 0; level < 4; ++level) {
            products += kFieldSep + std::to_string(w.category_id(level, fields[level])) + kFieldSep;
            products += std::to_string((*names[level])[fields[level]]);
        }
        products += kFieldSep + std::to_string(song.label + 1) + '\n';
    }
    simulator_detail::write_text(dir / "products.txt", products);

    auto request_line = [&](std::string& out, const SimRequest& r) {
        static const char* const kLabels[4] = {"0.0", "1.0", "2.0", "3.0"};
        append_terms(out, r.query);
        out += kFieldSep;
        for (std::size_t i = 0; i < r.candidates.size(); ++i) {
            if (i > 0) out += kListSep;
            out += std::to_string(r.candidates[i] + 1);
        }
        out += kFieldSep;
        for (std::size_t i = 0; i < r.label.size(); ++i) {
            if (i > 0) out += kListSep;
            out += kLabels[r.label[i]];
        }
        const std::vector<SimEvent>& timeline = sim.timelines[r.user];
        std::string queries, items, types, times = "0";
        for (std::size_t j = r.history_begin; j < r.history_end; ++j) {
            const SimEvent& e = timeline[j];
            const std::string sep = j > r.history_begin ? std::string(1, kListSep) : std::string();
            queries += sep;
            if (e.query.empty())
                queries += "-1";
            else
                append_terms(queries, e.query);
            items += sep + std::to_string(e.song + 1);
            types += sep + kBehaviorCodes[static_cast<int>(e.type)];
            if (j > r.history_begin) times += kListSep + std::to_string(e.time - timeline[j - 1].time);
        }
        if (r.history_end > r.history_begin)
            times += kListSep + std::to_string(r.time - timeline[r.history_end - 1].time);
        for (const std::string* field : {&queries, &items, &types, &times}) out += kFieldSep + *field;
        out += '\n';
    };
    const std::size_t bounds[4] = {0, sim.train, sim.train + sim.valid, sim.requests.size()};
    const char* const names[3] = {"train.txt", "valid.txt", "test.txt"};
    for (int split = 0; split < 3; ++split) {
        std::string text = header_line(kRequestFields) + '\n';
        for (std::size_t k = bounds[split]; k < bounds[split + 1]; ++k) request_line(text, sim.requests[k]);
        simulator_detail::write_text(dir / names[split], text);
    }

    auto probability_lines = [](const auto& rows, auto first, auto second) {
        std::string text;
        for (const auto& row : rows) {
            text += std::to_string(row.request);
            for (const std::vector<double>* list : {&(row.*first), &(row.*second)}) {
                text += '\t';
                for (std::size_t i = 0; i < list->size(); ++i) {
                    if (i > 0) text += '_';
                    simulator_detail::append_probability(text, (*list)[i]);
                }
            }
            text += '\n';
        }
        return text;
    };
    simulator_detail::write_text(dir / "truth.txt",
                                 probability_lines(oracle_truth(sim), &TruthRow::p_click, &TruthRow::p_conv));
    simulator_detail::write_text(dir / "online_truth.txt", probability_lines(online_truth(sim), &OnlineTruthRow::attraction,
                                                                            &OnlineTruthRow::conversion));
    simulator_detail::write_text(dir / "click_model.txt", click_model_text(w.options.clicks));
}

namespace simulator_detail {

/// The lines of truth.txt and online_truth.txt: `k \t list \t list`, two lists of
/// probabilities joined by '_', of the same length >= 1. A malformed line throws DataError
/// "FILE:LINE: field NAME: problem" with the fields named `first` and `second`.
template <typename Row>
std::vector<Row> read_probability_rows(const std::filesystem::path& path, std::vector<double> Row::*first,
                                       const char* first_name, std::vector<double> Row::*second,
                                       const char* second_name) {
    const std::string file = path.string();
    std::vector<Row> rows;
    detail::for_each_data_line(file, "", [&](std::string_view line, long line_no) {
        auto fail = [&](const char* field, const std::string& problem) { throw DataError(file, line_no, field, problem); };
        std::vector<std::string_view> fields;
        std::string_view rest(line);
        for (std::size_t tab; (tab = rest.find('\t')) != std::string_view::npos; rest.remove_prefix(tab + 1))
            fields.push_back(rest.substr(0, tab));
        fields.push_back(rest);
        if (fields.size() != 3) fail("line", "expected 3 tab-separated fields, found " + std::to_string(fields.size()));

        Row row;
        const auto [end, ec] = std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), row.request);
        if (ec != std::errc() || end != fields[0].data() + fields[0].size())
            fail("request", "'" + std::string(fields[0]) + "' is not a request index");
        auto parse_list = [&](std::string_view text, const char* field, std::vector<double>& out) {
            for (std::size_t begin = 0; begin <= text.size();) {
                const std::size_t stop = std::min(text.find('_', begin), text.size());
                const std::string_view item = text.substr(begin, stop - begin);
                double p = -1.0;
                const auto [item_end, item_ec] = std::from_chars(item.data(), item.data() + item.size(), p);
                if (item_ec != std::errc() || item_end != item.data() + item.size() || !(p >= 0.0 && p <= 1.0))
                    fail(field, "element [" + std::to_string(out.size()) + "] '" + std::string(item) +
                                    "' is not a probability in [0, 1]");
                out.push_back(p);
                begin = stop + 1;
            }
        };
        parse_list(fields[1], first_name, row.*first);
        parse_list(fields[2], second_name, row.*second);
        if ((row.*second).size() != (row.*first).size())
            fail(second_name, std::to_string((row.*second).size()) + " entries, " + first_name + " has " +
                                  std::to_string((row.*first).size()));
        rows.push_back(std::move(row));
    });
    return rows;
}

}  // namespace simulator_detail

/// Reads truth.txt (see write_jdsearch_files); fields p_click and p_conv.
inline std::vector<TruthRow> read_truth(const std::filesystem::path& path) {
    return simulator_detail::read_probability_rows(path, &TruthRow::p_click, "p_click", &TruthRow::p_conv, "p_conv");
}

/// Reads online_truth.txt (see write_jdsearch_files); fields attraction and conversion.
inline std::vector<OnlineTruthRow> read_online_truth(const std::filesystem::path& path) {
    return simulator_detail::read_probability_rows(path, &OnlineTruthRow::attraction, "attraction",
                                                   &OnlineTruthRow::conversion, "conversion");
}

}  // namespace piano::data
