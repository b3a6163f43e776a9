#pragma once
// The fp model's perplexity on the text a run was evaluated on, so the dashboard and Compare
// can draw it as the reference line. Computed once per (model, text, window) off the UI
// thread, in process through core (load_model, create_engine, evaluate_perplexity), and stored
// as an evaluation of the model file.
#include <QObject>
#include <QSet>

#include "app/studio/studio_context.h"

namespace aqlm::studio {

class FpEvaluator : public QObject {
  Q_OBJECT
 public:
  explicit FpEvaluator(StudioContext& context, QObject* parent = nullptr);
  // Evaluates the model of `run_id` on the run's evaluation text when the database has no
  // such evaluation of the model yet. Returns whether it started one.
  bool evaluateReferenceFor(store::Id run_id);
  bool busy() const { return !pending_.isEmpty(); }

 Q_SIGNALS:
  void finished(qint64 model_id);

 private:
  StudioContext& context_;
  QSet<QString> pending_;
};

}  // namespace aqlm::studio
