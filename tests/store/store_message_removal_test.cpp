// RunDatabase::remove_message (added for the Chat tab's Regenerate): the message goes, its
// neighbours and the conversation stay, and a missing id is a one-line error.
#include <gtest/gtest.h>

#include "core/store/run_database.h"
#include "tests/support/test_paths.h"

namespace aqlm::store {
namespace {

TEST(StoreMessages, RemovingAReplyKeepsTheRestOfTheConversation) {
  const auto file = aqlm::test::temp_dir("store-message-removal") / "runs.sqlite";
  RunDatabase db = RunDatabase::open(file);
  const Id conversation = db.create_conversation(ConversationInfo{"chat", std::nullopt, std::nullopt, "", nlohmann::json::object()});
  const Id question = db.add_message(conversation, MessageInfo{MessageRole::User, "hi", 0, {}, {}});
  const Id old_reply = db.add_message(conversation, MessageInfo{MessageRole::Assistant, "hello", 2, 10.0, 0.5});
  db.remove_message(old_reply);
  const Id new_reply = db.add_message(conversation, MessageInfo{MessageRole::Assistant, "hey", 1, 12.0, 0.4});

  const auto full = db.conversation(conversation);
  ASSERT_TRUE(full);
  ASSERT_EQ(full->messages.size(), 2u);
  EXPECT_EQ(full->messages[0].id, question);
  EXPECT_EQ(full->messages[1].id, new_reply);
  EXPECT_EQ(full->messages[1].content, "hey");
  EXPECT_EQ(db.list_conversations().at(0).message_count, 2);

  try {
    db.remove_message(new_reply + 100);
    ADD_FAILURE() << "removing a message that does not exist did not fail";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": message " + std::to_string(new_reply + 100) + " does not exist");
  }
}

}  // namespace
}  // namespace aqlm::store
