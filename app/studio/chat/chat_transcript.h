#pragma once
// The messages of one side of the Chat tab as a scrolling column of bubbles: the user's, and
// the assistant's with a line of figures under each reply (tokens, tokens/s, time to first
// token). A streamed reply grows piece by piece; repaints are coalesced so a fast model does
// not flood the event loop with relayouts.
#include <QScrollArea>
#include <QString>
#include <QTimer>

#include <vector>

class QLabel;
class QVBoxLayout;

namespace aqlm::studio {

class ChatTranscript : public QScrollArea {
  Q_OBJECT
 public:
  explicit ChatTranscript(QWidget* parent = nullptr);

  void clear();
  void setHeading(const QString& heading);  // the model's name above the column
  void setPlaceholder(const QString& text);  // shown while there are no messages
  void addUser(const QString& text);
  // A finished assistant reply (e.g. reloaded from the database).
  void addAssistant(const QString& text, const QString& figures);
  // Starts a streamed reply; appendToReply adds its pieces; finishReply sets the final text
  // and its figures.
  void beginReply();
  void appendToReply(const QString& piece);
  void finishReply(const QString& text, const QString& figures);
  void removeLastReply();  // Regenerate: the last assistant bubble goes

  int messageCount() const { return int(bubbles_.size()); }
  QString messageText(int index) const;     // what the bubble shows now
  QString messageFigures(int index) const;  // the line under a reply ("" for the user's)

 private:
  struct Bubble {
    QWidget* frame = nullptr;
    QLabel* text = nullptr;
    QLabel* figures = nullptr;
    bool user = false;
  };
  Bubble& add(bool user, const QString& text, const QString& figures);
  void flushStream();

  QLabel* heading_;
  QLabel* placeholder_;
  QVBoxLayout* column_;
  std::vector<Bubble> bubbles_;
  QString streamed_;   // the text of the reply being streamed
  QTimer repaint_;     // coalesces piece-by-piece updates
  bool follow_ = true; // keep the newest message in view (false while the reader scrolls back)
};

}  // namespace aqlm::studio
